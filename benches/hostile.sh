#!/usr/bin/env bash
# Hostile CSV files against `scorer score`, measured (not a test): for each
# file, peak RSS, exit code and the outcome (scored, or rejected and why).
# The files are generated under target/ (never committed).
#   bash benches/hostile.sh                          # builds the release binary
#   SCORER=path/to/scorer bash benches/hostile.sh    # another binary (e.g. an older build)
#   ONLY="commas cr-only" bash benches/hostile.sh    # a subset
#   VIA=s3 bash benches/hostile.sh                   # the S3 path: each file put into a moto
#                                                    # server, one S3 event through `scorer invoke`
# The promise under test (docs/batch-files.md "Bounded memory", docs/operating.md "Limits"): peak RSS <= 64 MB whatever the input
# for `score`; on the S3 path 64 MB plus the upload part buffers.
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

if [[ ${VIA:-score} == s3 ]]; then
    venv=target/test-tools/moto
    if ! cmp -s .ci/requirements-moto.txt "$venv/requirements.txt" 2>/dev/null; then
        python3 -m venv "$venv" && "$venv/bin/pip" install -q -r .ci/requirements-moto.txt && cp .ci/requirements-moto.txt "$venv/requirements.txt"
    fi
    port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
    moto=$!
    trap 'kill $moto 2>/dev/null || true' EXIT
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 LOG_LEVEL=warn
    "$venv/bin/python" -c 'import boto3; boto3.client("s3").create_bucket(Bucket="hostile")'
fi

# run FILE: scores FILE the chosen way; peak RSS in $dir/time.txt, messages in $dir/stderr.txt.
run() {
    local file=$1 name
    if [[ ${VIA:-score} != s3 ]]; then
        /usr/bin/time -f "%M" -o "$dir/time.txt" "$SCORER" score "$file" -o /dev/null --quiet 2>"$dir/stderr.txt"
        return
    fi
    name=$(basename "$file")
    # One PutObject (moto's multipart checksums fail the SDK's validation, see moto_throughput.sh).
    "$venv/bin/python" - "$file" "$name" <<'PY'
import sys, boto3
with open(sys.argv[1], "rb") as f:
    boto3.client("s3").put_object(Bucket="hostile", Key="incoming/" + sys.argv[2], Body=f)
PY
    printf '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"hostile"},"object":{"key":"incoming/%s"}}}]}' \
        "$name" >"$dir/event.json"
    local rc=0
    /usr/bin/time -f "%M" -o "$dir/time.txt" "$SCORER" invoke "$dir/event.json" >"$dir/reply.json" 2>"$dir/stderr.txt" || rc=$?
    # The outcome is the file's summary (status, counts or reason).
    "$venv/bin/python" - "$name" >>"$dir/stderr.txt" <<'PY'
import sys, json, boto3
body = boto3.client("s3").get_object(Bucket="hostile", Key="scored/" + sys.argv[1] + ".summary.json")["Body"].read()
s = json.loads(body)
print(s.get("status"), s.get("rows", ""), s.get("reason", "") or "")
PY
    return $rc
}

files=(commas unclosed-quote notes big-notes wide cr-only crlf normal-1m)
gens=(make_commas make_unclosed_quote make_notes make_big_notes make_wide make_cr_only make_crlf make_normal)
echo "binary: $SCORER, via ${VIA:-score}"
printf '%-15s %9s %5s %10s  %s\n' file MB exit "peak RSS" outcome
for i in "${!files[@]}"; do
    name=${files[$i]}
    if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
    file="$dir/$name.csv"
    # `yes | head` ends with SIGPIPE by design: no pipefail while generating.
    [[ -s $file ]] || (set +o pipefail; "${gens[$i]}" "$file.part" && mv "$file.part" "$file")
    rc=0
    run "$file" || rc=$?
    rss_kb=$(tail -n 1 "$dir/time.txt")
    # The summary or error line; the file path is left out, long reasons cut.
    outcome=$(grep -v '^Command exited' "$dir/stderr.txt" | tail -n 1 | sed "s|$file: ||; s| -> .*||" | cut -c 1-150)
    printf '%-15s %9.1f %5s %7.1f MB  %s\n' "$name" "$(($(stat -c %s "$file") / 100000))e-1" "$rc" \
        "$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')" "$outcome"
done
