fn main() -> std::process::ExitCode {
    scorer::cli::main()
}
