#!/usr/bin/env bash
# End-to-end demo (the README's "Try it locally" steps, run by CI): the real
# function under cargo-lambda's Lambda emulator, with moto server standing in
# for S3 and SQS. Nothing here talks to AWS.
#
#   bash tests/demo.sh
#
# 1. moto server on 127.0.0.1 (venv target/test-tools/moto, as tests/run.sh).
# 2. `cargo lambda watch -A 127.0.0.1 -P PORT` runs the `scorer` binary as the
#    Lambda function `scorer`, pointed at moto (AWS_ENDPOINT_URL, dummy creds).
# 3. a. Function URL: POST a malignant observation (200, prediction 1) and a
#       body with missing fields (400 with the clinics' message).
#    b. S3: upload samples/wdbc.csv to incoming/, invoke with an S3
#       ObjectCreated event, check scored/wdbc.csv (570 lines) and its summary.
#    c. SQS: invoke with a batch holding garbage (the two bad messages come
#       back in batchItemFailures) and with a valid observation (no failures).
# Every process started here is stopped on exit; every wait is bounded; any
# mismatch exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1
BUCKET=${DEMO_BUCKET:-scorer-demo}
BUILD_TIMEOUT=${DEMO_BUILD_TIMEOUT:-1500} # seconds for the debug build (clean: ~4 min on 2 cores)
READY_TIMEOUT=${DEMO_READY_TIMEOUT:-300}  # seconds for the emulator to run the built function
CALL_TIMEOUT=120                          # seconds for any one request
started_at=$(date +%s)

fail() {
    echo "FAIL: $*" >&2
    if [ -s "${work:-/nonexistent}/watch.log" ]; then
        echo "---- last lines of the emulator/function log ($work/watch.log)" >&2
        tail -n 40 "$work/watch.log" >&2
    fi
    exit 1
}

# --- tools (venvs under target/, reinstalled when their pins change) -----------
venv_moto=target/test-tools/moto
if ! cmp -s .ci/requirements-moto.txt "$venv_moto/requirements.txt" 2>/dev/null; then
    echo "== installing moto into $venv_moto"
    rm -rf "$venv_moto" && mkdir -p target/test-tools
    python3 -m venv "$venv_moto"
    "$venv_moto/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements-moto.txt
    cp .ci/requirements-moto.txt "$venv_moto/requirements.txt"
fi
venv_cl=target/tools/cargo-lambda
if ! "$venv_cl/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION "; then
    echo "== installing cargo-lambda $CARGO_LAMBDA_VERSION into $venv_cl"
    rm -rf "$venv_cl" && mkdir -p target/tools
    python3 -m venv "$venv_cl"
    "$venv_cl/bin/pip" install --quiet --disable-pip-version-check \
        "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
fi
PY=$ROOT/$venv_moto/bin/python # has boto3 (a moto[server] dependency)
export PATH="$ROOT/$venv_cl/bin:$ROOT/$venv_moto/bin:$PATH"

port_open() { python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()' "$1" 2>/dev/null; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- processes: each in its own process group, all stopped on exit --------------
work=$(mktemp -d "${TMPDIR:-/tmp}/scorer-demo.XXXXXX")
pids=()
cleanup() {
    local status=$? pid
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    if [ $status = 0 ]; then rm -rf "$work"; else echo "(logs kept in $work)" >&2; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in a new session (so its whole tree can be stopped).
start() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$work/$name.log" 2>&1 &
    pids+=($!)
}

# --- JSON helpers (python: no jq needed) -------------------------------------------
pretty() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2, ensure_ascii=False))'; }
# expect FILE PY_EXPR WHAT: PY_EXPR sees the parsed JSON as `r`.
expect() {
    python3 - "$1" "$2" "$3" <<'PY' || fail "$3"
import json, os, sys
path, expr, what = sys.argv[1:4]
try:
    r = json.load(open(path))
    ok = eval(expr, {"r": r, "os": os})
except Exception as e:  # a missing key is a mismatch, not a crash
    ok, err = False, e
else:
    err = None
print(f"   check: {what}: {'ok' if ok else 'MISMATCH'}" + (f" ({err!r})" if err else ""))
sys.exit(0 if ok else 1)
PY
}
step() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

# --- 1. moto server ---------------------------------------------------------------------
moto_port=$(free_port)
step "moto server (S3 and SQS) on 127.0.0.1:$moto_port"
start moto moto_server -H 127.0.0.1 -p "$moto_port"
for i in $(seq 1 150); do
    curl -s -o /dev/null -m 2 "http://127.0.0.1:$moto_port/" && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/moto.log" >&2; fail "moto server exited"; }
    [ "$i" = 150 ] && { cat "$work/moto.log" >&2; fail "moto server did not answer within 30 s"; }
    sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_SQS || true

# --- 2. the function under the Lambda emulator ------------------------------------------
step "building the function (debug, as cargo lambda watch runs it)"
show cargo build --locked --bin scorer
build_started=$(date +%s)
timeout "$BUILD_TIMEOUT" cargo build --locked --bin scorer || fail "cargo build failed or took over ${BUILD_TIMEOUT}s"
echo "   built in $(($(date +%s) - build_started))s"

port=$(free_port)
env_vars="AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL,AWS_ACCESS_KEY_ID=testing,AWS_SECRET_ACCESS_KEY=testing"
env_vars+=",AWS_REGION=us-east-1,OUTPUT_BUCKET=$BUCKET,LOG_LEVEL=info"
step "Lambda emulator on 127.0.0.1:$port"
show cargo lambda watch -A 127.0.0.1 -P "$port" --ignore-changes --env-vars "$env_vars"
start watch cargo lambda watch -A 127.0.0.1 -P "$port" --ignore-changes --env-vars "$env_vars"
url="http://127.0.0.1:$port/lambda-url/scorer/"
deadline=$(($(date +%s) + READY_TIMEOUT))
# Ready when the function itself answers through the emulated Function URL
# (GET / = model metadata). First wait for the emulator's port, then for one
# answer: the emulator holds the request until `cargo run` has started the
# function (a request given up early would only log a 500 when answered).
until port_open "$port"; do
    kill -0 "${pids[-1]}" 2>/dev/null || fail "cargo lambda watch exited"
    [ "$(date +%s)" -lt "$deadline" ] || fail "the emulator did not listen on 127.0.0.1:$port within ${READY_TIMEOUT}s"
    sleep 0.5
done
until code=$(curl -s -o "$work/ready.json" -w '%{http_code}' -m $((deadline - $(date +%s) + 1)) "$url") && [ "$code" = 200 ]; do
    kill -0 "${pids[-1]}" 2>/dev/null || fail "cargo lambda watch exited"
    [ "$(date +%s)" -lt "$deadline" ] || fail "the function did not answer GET $url within ${READY_TIMEOUT}s (last HTTP status: ${code:-none})"
    sleep 1
done
echo "   ready: GET $url answers 200 (model metadata)"
invoke() { # invoke EVENT_FILE OUT_FILE: cargo lambda invoke, answer as JSON
    show cargo lambda invoke -A 127.0.0.1 -P "$port" scorer --data-file "$1" -o json
    timeout "$CALL_TIMEOUT" cargo lambda invoke -A 127.0.0.1 -P "$port" scorer --data-file "$1" -o json >"$2" ||
        { cat "$2" >&2; fail "cargo lambda invoke failed for $1"; }
    pretty <"$2"
}

# --- 3a. Function URL -----------------------------------------------------------------
post() { # post BODY OUT_FILE -> prints the status line and the pretty answer
    show curl -s -X POST "$url" -d "'$1'"
    local code
    code=$(curl -s -o "$2" -w '%{http_code}' -m "$CALL_TIMEOUT" -X POST "$url" -d "$1") || fail "POST $url failed"
    echo "HTTP $code"
    pretty <"$2" || fail "the answer is not JSON: $(cat "$2")"
    echo "$code" >"$2.code"
}
step "3a. Function URL: a malignant observation"
post '{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}' "$work/predict.json"
[ "$(cat "$work/predict.json.code")" = 200 ] || fail "expected HTTP 200"
expect "$work/predict.json" 'r["status"] == "200" and r["reason"] == "OK"' 'status "200", reason "OK"'
expect "$work/predict.json" 'r["prediction"] == 1 and type(r["prediction"]) is int' 'prediction 1 (malignant)'

step "3a. Function URL: a body with missing fields"
post '{"meanConcavePoints":0.1471,"worstRadius":25.38}' "$work/missing.json"
[ "$(cat "$work/missing.json.code")" = 400 ] || fail "expected HTTP 400"
expect "$work/missing.json" 'r["status"] == "400" and r["prediction"] == ""' 'status "400", prediction ""'
export SEED_REASON="'body' must contain values for: meanConcavePoints, worstRadius, worstTexture, worstArea, worstConcavePoints"
expect "$work/missing.json" 'r["reason"] == os.environ["SEED_REASON"]' "reason is the clinics' message: $SEED_REASON"

# --- 3b. S3 batch -----------------------------------------------------------------------
step "3b. S3: bucket $BUCKET, samples/wdbc.csv -> s3://$BUCKET/incoming/wdbc.csv"
"$PY" - "$BUCKET" "$work/s3-event.json" <<'PY' || fail "could not prepare the bucket and the S3 event"
import json, sys, boto3
bucket, event_path = sys.argv[1:3]
s3 = boto3.client("s3")
s3.create_bucket(Bucket=bucket)
s3.upload_file("samples/wdbc.csv", bucket, "incoming/wdbc.csv")
head = s3.head_object(Bucket=bucket, Key="incoming/wdbc.csv")
event = json.load(open("events/s3-object-created.json"))
rec = event["Records"][0]
rec["awsRegion"] = "us-east-1"
rec["s3"]["bucket"]["name"] = bucket
rec["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
rec["s3"]["object"]["key"] = "incoming/wdbc.csv"
rec["s3"]["object"]["size"] = head["ContentLength"]
rec["s3"]["object"]["eTag"] = head["ETag"].strip('"')
json.dump(event, open(event_path, "w"), indent=2)
print(f"   uploaded incoming/wdbc.csv: {head['ContentLength']} bytes, ETag {head['ETag']}")
print(f"   event: events/s3-object-created.json with bucket {bucket}, size and eTag set")
PY
invoke "$work/s3-event.json" "$work/s3-answer.json"
expect "$work/s3-answer.json" 'r["files"][0]["status"] == "scored" and r["files"][0]["rows"] == 569' 'the file is scored, 569 rows'
"$PY" - "$BUCKET" <<'PY' || fail "scored/wdbc.csv or its summary is not as expected"
import csv, io, json, sys, boto3
bucket = sys.argv[1]
s3 = boto3.client("s3")
text = s3.get_object(Bucket=bucket, Key="scored/wdbc.csv")["Body"].read().decode()
lines = text.splitlines()
summary = json.loads(s3.get_object(Bucket=bucket, Key="scored/wdbc.csv.summary.json")["Body"].read())
rows = list(csv.DictReader(io.StringIO(text)))
print(f"$ aws s3 cp s3://{bucket}/scored/wdbc.csv -   (first rows; sample_id and the added columns)")
print("sample_id,prediction,probability,status,reason")
for row in rows[:3]:
    print(",".join(row.get(k, "?") for k in ("sample_id", "prediction", "probability", "status", "reason")))
print(f"... {len(lines)} lines")
print(f"$ aws s3 cp s3://{bucket}/scored/wdbc.csv.summary.json -")
print(json.dumps(summary, indent=2))
checks = [
    ("scored/wdbc.csv has 570 lines (header + 569 rows)", len(lines) == 570),
    ("the header ends with prediction,probability,status,reason",
     lines[0].endswith(",prediction,probability,status,reason")),
    ("every row is scored (status 200)", all(r["status"] == "200" for r in rows)),
    ("the summary says rows 569, scored 569, rejected 0",
     summary.get("rows") == 569 and summary.get("scored") == 569 and summary.get("rejected") == 0),
]
for what, ok in checks:
    print(f"   check: {what}: {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY

# --- 3c. SQS ------------------------------------------------------------------------------
step "3c. SQS: a batch with two unreadable messages and one observation (events/sqs-garbage.json)"
invoke events/sqs-garbage.json "$work/sqs-garbage-answer.json"
want=$(python3 -c 'import json; print(json.dumps([m["messageId"] for m in json.load(open("events/sqs-garbage.json"))["Records"][:2]]))')
expect "$work/sqs-garbage-answer.json" \
    "[f['itemIdentifier'] for f in r['batchItemFailures']] == $want" \
    "batchItemFailures lists exactly the first two message ids"

step "3c. SQS: one valid observation (events/sqs-observation.json)"
invoke events/sqs-observation.json "$work/sqs-observation-answer.json"
expect "$work/sqs-observation-answer.json" 'r["batchItemFailures"] == []' "batchItemFailures is empty"
"$PY" - "$BUCKET" <<'PY' || fail "the queue results are not in S3"
import json, sys, boto3
bucket = sys.argv[1]
s3 = boto3.client("s3")
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="scored/sqs/").get("Contents", [])]
print(f"$ aws s3 ls s3://{bucket}/scored/sqs/   (queue results: one JSON Lines object per message)")
for k in keys:
    print(f"   {k}")
lines = [json.loads(l) for k in keys
         for l in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines() if l.strip()]
for l in lines:
    print("   " + json.dumps(l))
ok = len(keys) == 2 and sum(1 for l in lines if l.get("id") == "lab-0001" and l.get("prediction") == 1) == 2
print(f"   check: two results objects (one per message), each with lab-0001 scored malignant: {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PY

printf '\n== demo passed in %ss\n' "$(($(date +%s) - started_at))"
