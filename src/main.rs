fn main() -> std::process::ExitCode {
    // A panic's message may quote what was being processed (a value, an id):
    // only where it happened is written (stderr, CloudWatch on Lambda).
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("scorer: internal error (a panic) at {at}; its message is not logged (it may hold patient data)");
    }));
    scorer::cli::main()
}
