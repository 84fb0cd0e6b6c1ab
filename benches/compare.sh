#!/usr/bin/env bash
# Side by side, in one run (issue 22): what the README's measured table says.
#
# Part one, on one generated file of ROWS rows (five full-precision floats,
# benches/throughput.sh's file), RUNS rounds, the jobs alternating within
# each round so all see the same machine load:
#   * a bare csv-crate loop that reads, parses the five floats and writes
#     them back (benches/csv_read_baseline.rs --write): the floor;
#   * `scorer score --workers 1` (reads and scores on one thread, writes on
#     another) and `scorer score` on all cores (its default: one worker per
#     core, chunks of the file scored in parallel, written in order);
#   * the Python batch job on the same fitted model: pandas read_csv ->
#     sklearn predict_proba -> to_csv (benches/sklearn_job.py; the model is
#     refitted once with models/train.py's code and must reproduce the golden
#     probabilities exactly, then pickled in $BENCH_DIR).
# Prints each job's median rows/s and peak RSS (/usr/bin/time), and the ratios.
#
# Part two: the cold start, exec -> first Function URL response through a
# local Runtime API, scorer and a hello-world lambda_runtime function
# alternating (benches/cold_start.rs), and scorer parsing the JSON export.
#
#   bash benches/compare.sh                       # 1M rows, 3 rounds, 30 cold starts each
#   ROWS=200000 RUNS=5 COLD_START_RUNS=50 bash benches/compare.sh
#
# Needs /usr/bin/time and the train venv (bash tests/tool_venv.sh train).
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
dir=${BENCH_DIR:-target/bench-data}
target=${CARGO_TARGET_DIR:-target}
python=${PYTHON:-target/test-tools/train/bin/python}
mkdir -p "$dir"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
[[ -x $python ]] || { echo "needs the train venv: bash tests/tool_venv.sh train (or PYTHON=...)"; exit 1; }
cargo build --release --quiet --bin scorer --example generate_csv --example csv_read_baseline \
    --example hello_lambda --example cold_start
bin=$target/release

file="$dir/rows-$ROWS.csv"
[[ -s $file ]] || "$bin/examples/generate_csv" "$ROWS" >"$file"
pkl="$dir/sklearn-model.pkl"
[[ -s $pkl ]] || "$python" benches/sklearn_job.py fit "$pkl"
bytes=$(stat -c %s "$file")
cat "$file" >/dev/null # the page cache, for every job alike

# The last job is one worker held to one core (taskset): what a 1,769 MB
# Lambda function (one vCPU) has, and the base the all-cores figure scales from.
jobs=("bare csv loop" "scorer score, 1 worker" "pandas + sklearn" "scorer score, all cores" "scorer, 1 worker, 1 core")
cmds=("$bin/examples/csv_read_baseline $file --write"
    "$bin/scorer score $file -o /dev/null --quiet --workers 1"
    "$python benches/sklearn_job.py score $pkl $file /dev/null"
    "$bin/scorer score $file -o /dev/null --quiet"
    "taskset -c 0 $bin/scorer score $file -o /dev/null --quiet --workers 1")
results="$dir/compare-results.txt"
: >"$results"
for round in $(seq "$RUNS"); do
    for i in "${!jobs[@]}"; do
        /usr/bin/time -f "%e %M" -o "$dir/time.txt" bash -c "exec ${cmds[$i]} >/dev/null" 2>"$dir/stderr.txt" \
            || { echo "${jobs[$i]} failed:"; cat "$dir/stderr.txt"; exit 1; }
        echo "$i $(cat "$dir/time.txt")" >>"$results"
    done
    echo "round $round of $RUNS done" >&2
done

echo "== $ROWS rows, $((bytes / 1000000)) MB ($((bytes / ROWS)) bytes a row), median of $RUNS alternating runs, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v rows="$ROWS" -v bytes="$bytes" -v names="${jobs[0]}|${jobs[1]}|${jobs[2]}|${jobs[3]}|${jobs[4]}" '
    { secs[$1] = secs[$1] " " $2; if ($3 > rss[$1]) rss[$1] = $3 }
    END {
        split(names, name, "|")
        for (j = 0; j < 5; j++) {
            n = split(secs[j], s, " ")
            # median (the lower middle of an even count)
            for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
            med[j] = s[int((n + 1) / 2)]
            printf "  %-24s %7.2f s  %10.0f rows/s  %6.1f MB/s  peak RSS %7.1f MB\n", name[j + 1], med[j], rows / med[j], bytes / med[j] / 1e6, rss[j] / 1024
        }
        printf "  1 worker / pandas + sklearn: %.1fx   1 worker / bare csv loop: %.2fx\n", med[2] / med[1], med[0] / med[1]
        printf "  all cores / pandas + sklearn: %.1fx   all cores / 1 worker: %.2fx   all cores / bare csv loop: %.2fx\n", med[2] / med[3], med[1] / med[3], med[0] / med[3]
        printf "  all cores / 1 worker on 1 core: %.2fx   1 worker on 1 core / bare csv loop: %.2fx\n", med[4] / med[3], med[0] / med[4]
    }' "$results"

echo "== cold start"
# scorer-json: the same binary given the export alone (MODEL_PATH, no
# compiled form beside it), so it parses and compiles the JSON at start-up as
# every build before the compiled form did.
cp models/breast-cancer-gbc.json "$dir/export-only.json"
rm -f "$dir/export-only.json.compiled"
"$bin/examples/cold_start" "scorer-json=$bin/scorer,MODEL_PATH=$dir/export-only.json"
