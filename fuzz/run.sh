#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]        (default 60)
#
# Environment:
#   FUZZ_TARGETS     space-separated subset (default: all four targets)
#   FUZZ_SANITIZER   address (default) or none; if the AddressSanitizer build
#                    fails, the script falls back to none and says so
#   FUZZ_MAX_LEN     libFuzzer -max_len for every target (default: per target,
#                    below; csv_pipeline also expands its inputs to 3 MiB)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Works on stable Rust: the
# nightly-only flags cargo-fuzz passes are allowed with RUSTC_BOOTSTRAP=1.
# New inputs go to fuzz/target/corpus-work/<target> (scratch); the committed
# seeds in fuzz/corpus/<target> and fuzz/regressions/<target> are only read.
# Crashes are written to fuzz/artifacts/<target>/. Exits 1 if any target
# crashed (or hit a timeout or out-of-memory), 2 if the build failed.
# Tracked files are left as they were: cargo may rewrite fuzz/Cargo.lock when
# the scorer's dependencies changed; the committed one is put back on exit.
set -uo pipefail

secs="${1:-60}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root" || exit 2

export RUSTC_BOOTSTRAP=1
targets="${FUZZ_TARGETS:-function_url csv_pipeline sqs_message s3_event}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

lock_copy="$(mktemp)"
cp "$here/Cargo.lock" "$lock_copy"
restore_lock() {
    if ! cmp -s "$lock_copy" "$here/Cargo.lock"; then
        echo "note: fuzz/Cargo.lock is behind the scorer's dependencies; it was updated for this run" \
            "and put back (to update it: cd fuzz && cargo update -p scorer, then commit)" >&2
        cp "$lock_copy" "$here/Cargo.lock"
    fi
    rm -f "$lock_copy"
}
trap restore_lock EXIT

# Per target: -max_len, -rss_limit_mb, -malloc_limit_mb (one allocation).
# AddressSanitizer's shadow memory and quarantine take a few hundred MB of RSS
# on their own. csv_pipeline builds inputs up to 3 MiB with its expander and
# asserts its own bound on the pipeline's heap (16 MiB) on every input.
limits() {
    case "$1" in
        csv_pipeline) echo 65536 2048 64 ;;
        function_url) echo 65536 1024 32 ;;
        sqs_message) echo 65536 1024 32 ;;
        s3_event) echo 16384 1024 16 ;;
        *) echo 4096 1024 32 ;;
    esac
}

echo "== building fuzz targets (sanitizer: $sanitizer)"
if ! cargo fuzz build --sanitizer "$sanitizer"; then
    if [ "$sanitizer" != none ]; then
        echo "!! the $sanitizer build failed; falling back to --sanitizer none" >&2
        sanitizer=none
        cargo fuzz build --sanitizer none || exit 2
    else
        exit 2
    fi
fi

mkdir -p "$here/logs"
summary=()
failed=0
for t in $targets; do
    work="$here/target/corpus-work/$t"
    mkdir -p "$work" "$here/corpus/$t" "$here/artifacts/$t"
    dirs=("$work" "$here/corpus/$t")
    [ -d "$here/regressions/$t" ] && dirs+=("$here/regressions/$t")
    before="$(find "$here/artifacts/$t" -type f | wc -l)"
    log="$here/logs/$t.log"
    read -r max_len rss_mb malloc_mb <<<"$(limits "$t")"
    max_len="${FUZZ_MAX_LEN:-$max_len}"
    echo "== $t: ${secs}s, -max_len=$max_len -rss_limit_mb=$rss_mb -malloc_limit_mb=$malloc_mb (log: fuzz/logs/$t.log)"
    # One process, one core (-jobs is not used: libFuzzer would move the
    # output, final stats included, into fuzz-N.log files).
    cargo fuzz run --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" \
        -timeout=30 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    after="$(find "$here/artifacts/$t" -type f | wc -l)"
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')"
    took="$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $5}')"
    rate="?"
    [ -n "$execs" ] && [ -n "$took" ] && [ "$took" -gt 0 ] && rate=$((execs / took))
    crashes=$((after - before))
    # Largest new input kept (the work corpus), libFuzzer's length limit at the
    # end, and for csv_pipeline the largest CSV its expander built (the target
    # logs each new maximum).
    largest="$(find "$work" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -1)"
    limit="$(grep -o 'lim: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')"
    built="$(grep -o 'largest CSV so far: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')"
    status=ok
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        status="CRASH (exit $rc)"
        failed=1
        grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -8
    fi
    summary+=("$(printf '%-14s %-16s executions=%-10s exec/s=%-6s largest new input=%-7s len limit=%-7s%s new artifacts=%s' \
        "$t" "$status" "${execs:-?}" "$rate" "${largest:-?}" "${limit:-?}" "${built:+ largest CSV built=$built}" "$crashes")")
done

echo
echo "== summary (sanitizer: $sanitizer, ${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "crashes are in fuzz/artifacts/<target>/; see fuzz/README.md to reproduce" >&2
    exit 1
fi
