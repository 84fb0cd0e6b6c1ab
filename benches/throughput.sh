#!/usr/bin/env bash
# Batch throughput, measured (not a test): `scorer score` on generated CSVs of
# ROWS rows (five full-precision floats, ~95 bytes a row), with the drift
# statistics (the default) and without, against a bare csv-crate read loop
# over the same file, with peak RSS from /usr/bin/time.
#   bash benches/throughput.sh                # 1M and 10M rows
#   ROWS="1000000" bash benches/throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-"1000000 10000000"}
dir=${BENCH_DIR:-target/bench-data}
mkdir -p "$dir"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
cargo build --release --quiet --bin scorer --example generate_csv --example csv_read_baseline

measure() { # measure LABEL ROWS BYTES CMD...
    local label=$1 rows=$2 bytes=$3; shift 3
    /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$@" >/dev/null 2>"$dir/stderr.txt"
    read -r secs rss_kb <"$dir/time.txt"
    awk -v l="$label" -v r="$rows" -v b="$bytes" -v s="$secs" -v m="$rss_kb" \
        'BEGIN { printf "  %-22s %6.2f s  %11.0f rows/s  %7.1f MB/s  peak RSS %6.1f MB\n", l, s, r / s, b / s / 1e6, m / 1024 }'
}

for rows in $ROWS; do
    file="$dir/rows-$rows.csv"
    [[ -s $file ]] || target/release/examples/generate_csv "$rows" >"$file"
    bytes=$(stat -c %s "$file")
    echo "$rows rows, $((bytes / 1000000)) MB ($((bytes / rows)) bytes a row):"
    cat "$file" >/dev/null # warm the page cache for both runs
    measure "bare csv read loop" "$rows" "$bytes" target/release/examples/csv_read_baseline "$file"
    measure "scorer score" "$rows" "$bytes" target/release/scorer score "$file" -o /dev/null --quiet
    measure "scorer score --explain" "$rows" "$bytes" target/release/scorer score "$file" -o /dev/null --quiet --explain
    measure "scorer score --no-drift" "$rows" "$bytes" target/release/scorer score "$file" -o /dev/null --quiet --no-drift
done

# The transcoding paths (issue 15), same rows: UTF-16 LE with a BOM and tabs
# (Excel's "Unicode Text": one streaming decoder), and a `;`/decimal-comma
# file with a Windows-1252 id in every row (every row takes the per-field
# Windows-1252 decode: the worst case of that path). FORMS=0 skips them.
if [[ ${FORMS:-1} == 1 ]]; then
    for rows in $ROWS; do
        file="$dir/rows-$rows.csv"
        utf16="$dir/rows-$rows.utf16.txt"
        cp1252="$dir/rows-$rows.1252.csv"
        [[ -s $utf16 ]] || { printf '\xff\xfe'; tr ',' '\t' <"$file" | iconv -f UTF-8 -t UTF-16LE; } >"$utf16"
        [[ -s $cp1252 ]] || sed -e '1s/^/id;/' -e '2,$s/^/Biopsia-Mu\xf1oz;/' -e '1!s/,/;/g' -e '1s/,/;/g' -e '2,$s/\./,/g' "$file" >"$cp1252"
        for f in "$utf16" "$cp1252"; do
            bytes=$(stat -c %s "$f")
            cat "$f" >/dev/null
            measure "scorer score $(basename "$f" | cut -d. -f2)" "$rows" "$bytes" target/release/scorer score "$f" -o /dev/null --quiet
        done
    done
fi
