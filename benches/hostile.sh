#!/usr/bin/env bash
# Hostile CSV files against `scorer score`, measured (not a test): for each
# file, peak RSS, exit code and the outcome (scored, or rejected and why).
# The files are generated under target/ (never committed).
#   bash benches/hostile.sh                          # builds the release binary
#   SCORER=path/to/scorer bash benches/hostile.sh    # another binary (e.g. an older build)
#   ONLY="commas cr-only" bash benches/hostile.sh    # a subset
# The promise under test (README "Limits"): peak RSS <= 64 MB whatever the input.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-target/bench-data/hostile}
mkdir -p "$dir"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
if [[ -z ${SCORER:-} ]]; then
    cargo build --release --quiet --bin scorer --example generate_csv
    SCORER=target/release/scorer
fi
[[ -x target/release/examples/generate_csv ]] || cargo build --release --quiet --example generate_csv
generate=target/release/examples/generate_csv
header="sample_id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints"
row="lab-0000001,0.14710,25.380,17.330,2019.00,0.26540"

# Each generator writes its file once (delete target/bench-data/hostile to redo).
make_commas() { # 200 lines, each 900 KiB of commas (~184 MB)
    local line
    line=$(head -c $((900 * 1024)) /dev/zero | tr '\0' ',')
    { echo "$header"; for _ in $(seq 200); do printf '%s\n' "$line"; done; } >"$1"
}
make_unclosed_quote() { # line 2 opens a quote that never closes, then 2M ordinary rows (~94 MB)
    { echo "$header"; echo "\"lab-0000000,0.1,20,20,900,0.1"; yes "$row" | head -n 2000000; } >"$1"
}
make_notes() { # 4,000 rows, each with a 16 KB quoted notes cell of 200 lines
    local notes
    notes=$(yes 'Left breast, upper outer quadrant; sample re-read by second pathologist, ok.  ' | head -n 200)
    { echo "id,notes,${header#sample_id,}"; for _ in $(seq 4000); do printf 'S1,"%s",0.1471,25.38,17.33,2019.0,0.2654\n' "$notes"; done; } >"$1"
}
make_big_notes() { # 100 rows, each with a quoted notes cell just under the 1 MiB record cap (~100 MB)
    local notes
    notes=$(yes 'Left breast, upper outer quadrant; sample re-read by second pathologist, ok.  ' | head -c 1040000)
    { echo "id,notes,${header#sample_id,}"; for _ in $(seq 100); do printf 'S1,"%s",0.1471,25.38,17.33,2019.0,0.2654\n' "$notes"; done; } >"$1"
}
make_wide() { # 10,000 columns; 50 x (13 rows of empty fields + 1 row with a ~1 MB quoted cell): the heap's worst case
    local commas notes i
    commas=$(head -c 9999 /dev/zero | tr '\0' ',')
    notes=$(head -c 1028000 /dev/zero | tr '\0' 'n')
    {
        printf '%s' "${header#sample_id,}"
        for _ in $(seq 9995); do printf ',c'; done
        echo
        for _ in $(seq 50); do
            for i in $(seq 13); do printf '%s\n' "$commas"; done
            printf '"%s"%s\n' "$notes" "$commas"
        done
    } >"$1"
}
make_cr_only() { # classic-Mac line ends (Excel "CSV (Macintosh)"), 100k rows (~9.5 MB)
    "$generate" 100000 | tr '\n' '\r' >"$1"
}
make_crlf() { # Windows line ends, 100k rows
    "$generate" 100000 | sed 's/$/\r/' >"$1"
}
make_normal() { # 1M ordinary rows (~95 MB), for comparison
    "$generate" 1000000 >"$1"
}

files=(commas unclosed-quote notes big-notes wide cr-only crlf normal-1m)
gens=(make_commas make_unclosed_quote make_notes make_big_notes make_wide make_cr_only make_crlf make_normal)
echo "binary: $SCORER"
printf '%-15s %9s %5s %10s  %s\n' file MB exit "peak RSS" outcome
for i in "${!files[@]}"; do
    name=${files[$i]}
    if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
    file="$dir/$name.csv"
    # `yes | head` ends with SIGPIPE by design: no pipefail while generating.
    [[ -s $file ]] || (set +o pipefail; "${gens[$i]}" "$file.part" && mv "$file.part" "$file")
    rc=0
    /usr/bin/time -f "%M" -o "$dir/time.txt" "$SCORER" score "$file" -o /dev/null --quiet 2>"$dir/stderr.txt" || rc=$?
    rss_kb=$(tail -n 1 "$dir/time.txt")
    # The summary or error line; the file path is left out, long reasons cut.
    outcome=$(grep -v '^Command exited' "$dir/stderr.txt" | tail -n 1 | sed "s|$file: ||; s| -> .*||" | cut -c 1-150)
    printf '%-15s %9.1f %5s %7.1f MB  %s\n' "$name" "$(($(stat -c %s "$file") / 100000))e-1" "$rc" \
        "$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')" "$outcome"
done
