#!/usr/bin/env bash
# The HTTP contract for one model export, end to end (tests/run.sh runs it for
# the shipped model after cargo test; run it yourself for another export):
#
#   bash tests/fuzz_openapi.sh [MODEL_PATH]
#
# 1. `scorer openapi` prints the document for the model (MODEL_PATH, else the
#    embedded one): tests/openapi_check.py validates it (OpenAPI 3.1, its
#    examples, the answers it must refuse) and checks PyYAML reads the YAML as
#    the --json output says.
# 2. `scorer serve` on 127.0.0.1 (a free port) with that model, and
#    Schemathesis against its /openapi.json with every check: responses
#    conform (status, headers, schema), schema-valid requests are accepted,
#    invalid ones rejected, undocumented methods answer 405 with Allow. Any
#    finding fails the run. The seed is printed; SCHEMATHESIS_SEED=N replays it.
#    Before it, tests/generated_clients.py generates a client
#    (openapi-python-client) and pydantic models (datamodel-code-generator)
#    from that served document and parses the service's answers with them.
#
# Uses the debug binary cargo test built (SCORER_BIN overrides it). About a
# minute: SCHEMATHESIS_MAX_TIME (seconds, default 45) bounds the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/tool_venv.sh
tool_venv openapi
tool_venv schemathesis
tool_venv generators

model=${1:-${MODEL_PATH:-}}
bin=$PWD/${SCORER_BIN:-target/debug/scorer}
[ -x "$bin" ] || { echo "FAIL: $bin not found: run cargo build (or cargo test) first"; exit 1; }
if [ -n "$model" ]; then
    model=$(realpath "$model")
    echo "== the HTTP contract for $model"
else
    echo "== the HTTP contract for the embedded model"
fi
export MODEL_PATH=$model

work=$(mktemp -d)
serve_pid=
cleanup() {
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "-- scorer openapi: a valid document, its examples, the answers it must refuse"
"$bin" openapi >"$work/openapi.yaml"
"$bin" openapi --json >"$work/openapi.json"
target/test-tools/openapi/bin/python tests/openapi_check.py --doc "$work/openapi.yaml" --same-as "$work/openapi.json"

echo "-- scorer serve on 127.0.0.1"
"$bin" serve --port 0 >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
url=
for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on //p' "$work/serve.out")
    [ -n "$url" ] && break
    kill -0 "$serve_pid" 2>/dev/null || { echo "FAIL: scorer serve exited:"; cat "$work/serve.log"; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "FAIL: scorer serve printed no address"; cat "$work/serve.log"; exit 1; }

# Schemathesis leaves out the operation that serves the document it loaded
# from a URL; loaded from a file (the served document), it calls all three.
curl -fsS "$url/openapi.json" -o "$work/served.json"
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
    "$work/served.json" "$work/openapi.json" || { echo "FAIL: GET /openapi.json differs from scorer openapi --json"; exit 1; }

echo "-- generated clients: openapi-python-client and datamodel-code-generator from the served document"
mkdir "$work/generated"
target/test-tools/generators/bin/python tests/generated_clients.py --doc "$work/served.json" --url "$url" --work "$work/generated"
# The infer operations of the Open Inference Protocol: a schema-valid request
# is necessary, not sufficient. That `data` holds as many values as `shape`
# says, that the inputs name the model's features or form one [N, F] tensor,
# that each input has its data: JSON Schema cannot say it, and the service
# answers 400 (naming the rule). So a 400 to a schema-valid infer request is
# no finding there; every other check (negative data rejected, schemas,
# headers, no 5xx) still holds for them.
cat >"$work/schemathesis.toml" <<'TOML'
[[operations]]
include-path-regex = "^/v2/models/.*/infer$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]
TOML

echo "-- schemathesis: the served $url/openapi.json against $url"
seed=${SCHEMATHESIS_SEED:-$(python3 -c 'import random; print(random.randrange(2**32))')}
started=$SECONDS
# From the temporary directory: Schemathesis writes its state where it runs.
# One worker: with two, Schemathesis 4.32's coverage phase fails with a
# "Runtime Error" (a KeyError in Hypothesis's lambda-description cache) when
# the two infer operations, which share their request schema, are generated
# at once; with one it does not (seeds 1, 2, 3891395451 tried both ways).
status=0
(cd "$work" && "$OLDPWD/target/test-tools/schemathesis/bin/st" run served.json --url "$url" \
    --checks all --workers 1 --max-time "${SCHEMATHESIS_MAX_TIME:-45}" --seed "$seed" \
    --suppress-health-check all --generation-database none --no-color) || status=$?
echo "schemathesis: $((SECONDS - started)) s, seed $seed (SCHEMATHESIS_SEED=$seed replays it)"
kill -0 "$serve_pid" 2>/dev/null || { echo "FAIL: scorer serve died during the run:"; cat "$work/serve.log"; exit 1; }
if [ "$status" -ne 0 ]; then
    echo "FAIL: schemathesis found problems (above)"
    exit 1
fi
