#!/usr/bin/env bash
# The test command (README): installs the Python test tools if missing, starts
# moto server (S3/SQS) on 127.0.0.1, lints the SAM template, checks openapi.yaml, runs cargo test,
# then validates every HTTP answer the tests recorded against openapi.yaml and
# (tests/fuzz_openapi.sh) checks the document `scorer openapi` prints and fuzzes
# `scorer serve` with Schemathesis. With arguments (a cargo test filter), the
# recorded answers are checked and the fuzzing is left out.
# If moto cannot start, this fails: no test is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

source tests/tool_venv.sh
for tool in moto cfn-lint openapi; do
    tool_venv $tool
    PATH="$PWD/target/test-tools/$tool/bin:$PATH"
done
export PATH
# Run by path from tests/fuzz_openapi.sh, not put on PATH.
tool_venv schemathesis

echo "== template: cfn-lint and the breaks it must catch"
bash tests/template_lint.sh

echo "== openapi.yaml: a valid OpenAPI 3.1 document, its examples, the answers it must refuse"
target/test-tools/openapi/bin/python tests/openapi_check.py

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== moto server on 127.0.0.1:$port"
moto_server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 || curl -s -o /dev/null "http://127.0.0.1:$port/"; then
        break
    fi
    kill -0 $moto_pid 2>/dev/null || { echo "FAIL: moto server exited:"; cat target/moto.log; exit 1; }
    sleep 0.2
done
curl -s -o /dev/null "http://127.0.0.1:$port/" || { echo "FAIL: moto server did not answer"; cat target/moto.log; exit 1; }
export MOTO_ENDPOINT="http://127.0.0.1:$port"

# The contract tests record every HTTP answer they receive here; afterwards
# each is validated against openapi.yaml. A full run (no filter) must have
# recorded every kind of answer (--require-all), so the check cannot pass empty.
export SCORER_CONTRACT_ANSWERS="$PWD/target/contract-answers.jsonl"
rm -f "$SCORER_CONTRACT_ANSWERS"

echo "== cargo test"
cargo test --locked "$@"

if [ $# -eq 0 ]; then
    echo "== every recorded HTTP answer against openapi.yaml"
    target/test-tools/openapi/bin/python tests/openapi_check.py --answers "$SCORER_CONTRACT_ANSWERS" --require-all
    echo "== the shipped model's HTTP contract: scorer openapi checked, scorer serve fuzzed by Schemathesis"
    env -u MODEL_PATH bash tests/fuzz_openapi.sh
elif [ -s "$SCORER_CONTRACT_ANSWERS" ]; then
    echo "== the HTTP answers these tests recorded against openapi.yaml"
    target/test-tools/openapi/bin/python tests/openapi_check.py --answers "$SCORER_CONTRACT_ANSWERS"
fi
