#!/usr/bin/env bash
# End-to-end demo (docs/deploying.md, "Local end-to-end demo"; run by CI): the real
# function under cargo-lambda's Lambda emulator, with moto server standing in
# for S3 and SQS. Nothing here talks to AWS.
#
#   bash tests/demo.sh
#
# 1. moto server on 127.0.0.1 (venv target/test-tools/moto, as tests/run.sh):
#    the bucket, and a result queue for RESULT_QUEUE_URL.
# 2. The `scorer` binary twice under `cargo lambda watch -A 127.0.0.1`, as the
#    template deploys it: as ApiFunction and as BatchFunction, each with
#    exactly the environment variables template.yaml gives it (parameters at
#    their defaults; OUTPUT_BUCKET and RESULT_QUEUE_URL point at moto). The
#    API function gets no AWS endpoint or credentials at all; the batch one
#    gets moto's, standing in for its role.
# 3. a. API function, Function URL: POST a malignant observation (200,
#       prediction 1) and a body with missing fields (400 with the clinics'
#       message).
#    b. Batch function, S3: upload samples/wdbc.csv to incoming/, invoke with
#       an S3 ObjectCreated event, check scored/wdbc.csv (570 lines), its
#       summary and the notice on the result queue.
#    c. Batch function, SQS: a batch holding garbage (the two bad messages come
#       back in batchItemFailures) and a valid observation (no failures).
#    d. Batch function, Distributed Map: a batch of items, answered in order.
#    e. Batch function, S3 Batch Operations: a job of two tasks, one file that
#       exists (Succeeded) and one that does not (not Succeeded).
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
    local log=${watch_log:-${work:-/nonexistent}/watch-batch.log}
    if [ -s "$log" ]; then
        echo "---- last lines of the emulator/function log ($log)" >&2
        tail -n 40 "$log" >&2
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

RESULT_QUEUE_URL=$("$PY" -c 'import boto3, sys; print(boto3.client("sqs").create_queue(QueueName=sys.argv[1])["QueueUrl"])' "$BUCKET-results") ||
    fail "could not create the result queue in moto"

# function_env FUNCTION KEY=VALUE...: the function's environment variables in
# template.yaml as KEY=VALUE,KEY=VALUE (cargo lambda's --env-vars): !Ref of a
# parameter is its default; a computed value (!If, !Sub) must be given here.
function_env() {
    "$PY" - "$@" <<'PY'
import sys, yaml

class Loader(yaml.SafeLoader):
    pass

def tag(loader, suffix, node):  # !Ref X -> {"Ref": X}, !If [...] -> {"If": [...]}
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}

Loader.add_multi_constructor("!", tag)
function, overrides = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
t = yaml.load(open("template.yaml", encoding="utf-8"), Loader=Loader)
variables = t["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
out = []
for k, v in variables.items():
    if k in overrides:
        v = overrides[k]
    elif isinstance(v, dict) and v.get("Ref") in t["Parameters"]:
        v = t["Parameters"][v["Ref"]].get("Default", "")
    elif not isinstance(v, str):
        sys.exit(f"{function}: {k} is computed in template.yaml ({v}); give the demo a value for it")
    if v == "":
        continue  # the service reads an empty variable as unset; cargo lambda refuses `K=`
    if "," in str(v):
        sys.exit(f"{function}: {k}={v!r} holds a comma, which --env-vars cannot carry")
    out.append(f"{k}={v}")
for k in sorted(set(overrides) - set(variables)):
    sys.exit(f"{function}: the demo sets {k}, which template.yaml does not give it")
print(",".join(out))
PY
}
api_env=$(function_env ApiFunction) || fail "cannot read ApiFunction's environment from template.yaml"
batch_env=$(function_env BatchFunction "OUTPUT_BUCKET=$BUCKET" "RESULT_QUEUE_URL=$RESULT_QUEUE_URL") ||
    fail "cannot read BatchFunction's environment from template.yaml"
echo "   ApiFunction's environment (template.yaml):   $api_env"
echo "   BatchFunction's environment (template.yaml): $batch_env"

# --- 2. the function under the Lambda emulator ------------------------------------------
step "building the function (debug, as cargo lambda watch runs it)"
show cargo build --locked --bin scorer
build_started=$(date +%s)
timeout "$BUILD_TIMEOUT" cargo build --locked --bin scorer || fail "cargo build failed or took over ${BUILD_TIMEOUT}s"
echo "   built in $(($(date +%s) - build_started))s"

# emulate NAME ENV_VARS [env -u ...]: `cargo lambda watch` on a free port, in
# the background; sets ${NAME}_port and ${NAME}_pid. The function is the
# `scorer` binary either way.
emulate() {
    local name=$1 vars=$2 port
    shift 2
    port=$(free_port)
    printf -v "${name}_port" '%s' "$port"
    show "$@" cargo lambda watch -A 127.0.0.1 -P "$port" --ignore-changes --env-vars "'$vars'"
    start "watch-$name" "$@" cargo lambda watch -A 127.0.0.1 -P "$port" --ignore-changes --env-vars "$vars"
    printf -v "${name}_pid" '%s' "${pids[-1]}"
}
# wait_ready NAME: ready when the function itself answers through the emulated
# Function URL (GET / = model metadata). First wait for the emulator's port,
# then for one answer: the emulator holds the request until `cargo run` has
# started the function (a request given up early would only log a 500).
wait_ready() {
    local name=$1 port_var=${1}_port pid_var=${1}_pid port pid url code deadline
    port=${!port_var} pid=${!pid_var}
    url="http://127.0.0.1:$port/lambda-url/scorer/"
    deadline=$(($(date +%s) + READY_TIMEOUT))
    watch_log=$work/watch-$name.log
    until port_open "$port"; do
        kill -0 "$pid" 2>/dev/null || fail "cargo lambda watch ($name) exited"
        [ "$(date +%s)" -lt "$deadline" ] || fail "the $name emulator did not listen on 127.0.0.1:$port within ${READY_TIMEOUT}s"
        sleep 0.5
    done
    until code=$(curl -s -o "$work/ready-$name.json" -w '%{http_code}' -m $((deadline - $(date +%s) + 1)) "$url") && [ "$code" = 200 ]; do
        kill -0 "$pid" 2>/dev/null || fail "cargo lambda watch ($name) exited"
        [ "$(date +%s)" -lt "$deadline" ] || fail "the $name function did not answer GET $url within ${READY_TIMEOUT}s (last HTTP status: ${code:-none})"
        sleep 1
    done
    echo "   $name ready: GET $url answers 200 (model metadata)"
    unset watch_log
}
step "Lambda emulators: the API function (no AWS access at all) and the batch function (moto)"
emulate api "$api_env" env -u AWS_ENDPOINT_URL -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION -u AWS_DEFAULT_REGION
emulate batch "$batch_env,AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL,AWS_ACCESS_KEY_ID=testing,AWS_SECRET_ACCESS_KEY=testing,AWS_REGION=us-east-1"
wait_ready api
wait_ready batch
url="http://127.0.0.1:$api_port/lambda-url/scorer/"
invoke() { # invoke EVENT_FILE OUT_FILE: cargo lambda invoke on the batch function, answer as JSON
    show cargo lambda invoke -A 127.0.0.1 -P "$batch_port" scorer --data-file "$1" -o json
    timeout "$CALL_TIMEOUT" cargo lambda invoke -A 127.0.0.1 -P "$batch_port" scorer --data-file "$1" -o json >"$2" ||
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
step "3a. API function, Function URL: a malignant observation"
post '{"meanConcavePoints":0.1471,"worstRadius":25.38,"worstTexture":17.33,"worstArea":2019.0,"worstConcavePoints":0.2654}' "$work/predict.json"
[ "$(cat "$work/predict.json.code")" = 200 ] || fail "expected HTTP 200"
expect "$work/predict.json" 'r["status"] == "200" and r["reason"] == "OK"' 'status "200", reason "OK"'
expect "$work/predict.json" 'r["prediction"] == 1 and type(r["prediction"]) is int' 'prediction 1 (malignant)'

step "3a. API function, Function URL: a body with missing fields"
post '{"meanConcavePoints":0.1471,"worstRadius":25.38}' "$work/missing.json"
[ "$(cat "$work/missing.json.code")" = 400 ] || fail "expected HTTP 400"
expect "$work/missing.json" 'r["status"] == "400" and r["prediction"] == ""' 'status "400", prediction ""'
# The seed's message, naming only the missing values (clients match on its prefix).
export SEED_REASON="'body' must contain values for: worstTexture, worstArea, worstConcavePoints"
expect "$work/missing.json" 'r["reason"] == os.environ["SEED_REASON"]' "reason is the clinics' message: $SEED_REASON"

# --- 3b. S3 batch -----------------------------------------------------------------------
step "3b. Batch function, S3: bucket $BUCKET, samples/wdbc.csv -> s3://$BUCKET/incoming/wdbc.csv"
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
    ("the header ends with prediction,probability,status,reason,warnings",
     lines[0].endswith(",prediction,probability,status,reason,warnings")),
    ("every row is scored (status 200)", all(r["status"] == "200" for r in rows)),
    ("the summary says rows 569, scored 569, rejected 0",
     summary.get("rows") == 569 and summary.get("scored") == 569 and summary.get("rejected") == 0),
]
for what, ok in checks:
    print(f"   check: {what}: {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY

"$PY" - "$RESULT_QUEUE_URL" <<'PY' || fail "no notice for scored/wdbc.csv on the result queue"
import json, sys, boto3
url = sys.argv[1]
sqs = boto3.client("sqs")
notices = []
for _ in range(5):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    notices += [json.loads(m["Body"]) for m in got]
    if not got:
        break
print(f"$ aws sqs receive-message --queue-url {url}   (RESULT_QUEUE_URL)")
for n in notices:
    print("   " + json.dumps(n))
ok = any(n.get("kind") == "file" and n.get("output", {}).get("key") == "scored/wdbc.csv" and n.get("rows") == 569 for n in notices)
print(f"   check: a file notice for scored/wdbc.csv with 569 rows: {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PY

# --- 3c. SQS ------------------------------------------------------------------------------
step "3c. Batch function, SQS: a batch with two unreadable messages and one observation (events/sqs-garbage.json)"
invoke events/sqs-garbage.json "$work/sqs-garbage-answer.json"
want=$(python3 -c 'import json; print(json.dumps([m["messageId"] for m in json.load(open("events/sqs-garbage.json"))["Records"][:2]]))')
expect "$work/sqs-garbage-answer.json" \
    "[f['itemIdentifier'] for f in r['batchItemFailures']] == $want" \
    "batchItemFailures lists exactly the first two message ids"

step "3c. Batch function, SQS: one valid observation (events/sqs-observation.json)"
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

# --- 3d. Distributed Map -------------------------------------------------------------------
step "3d. Batch function, Distributed Map: a batch of four rows, two of them bad (events/stepfunctions-distributed-map.json)"
invoke events/stepfunctions-distributed-map.json "$work/map-answer.json"
expect "$work/map-answer.json" '[i["status"] for i in r] == ["200", "200", "400", "400"]' 'four items back, in order: 200, 200, 400, 400'
expect "$work/map-answer.json" 'r[0]["sample_id"] == "WDBC-0000" and r[0]["prediction"] == 1' 'the first item keeps its sample_id and is malignant'

# --- 3e. S3 Batch Operations ------------------------------------------------------------------
step "3e. Batch function, S3 Batch Operations: incoming/wdbc.csv and a key that does not exist"
"$PY" - "$BUCKET" "$work/batch-operations.json" <<'PY' || fail "could not prepare the Batch Operations event"
import json, sys
bucket, path = sys.argv[1:3]
event = json.load(open("events/s3-batch-operations.json"))
for task in event["tasks"]:
    task["s3Bucket"] = bucket
json.dump(event, open(path, "w"), indent=2)
PY
invoke "$work/batch-operations.json" "$work/batch-operations-answer.json"
expect "$work/batch-operations-answer.json" \
    '[t["resultCode"] for t in r["results"]][0] == "Succeeded" and r["results"][1]["resultCode"] != "Succeeded"' \
    'the existing file Succeeded, the missing one did not'

printf '\n== demo passed in %ss\n' "$(($(date +%s) - started_at))"
