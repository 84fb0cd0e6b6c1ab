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
# The training environment first: the venvs after it come before it on PATH.
for tool in train moto cfn-lint openapi; do
    tool_venv $tool
    PATH="$PWD/target/test-tools/$tool/bin:$PATH"
done
export PATH
# Run by path from tests/fuzz_openapi.sh, not put on PATH: Schemathesis, and the
# client generators (tests/generated_clients.py).
tool_venv schemathesis
tool_venv generators
# The real Open Inference Protocol client, run by path from tests/integration/oip.rs.
tool_venv tritonclient

# train.py is deterministic: the example exports of other contracts and their
# goldens, trained afresh, must be the committed bytes. The tests then serve the
# fresh ones (SCORER_TRAINED_DIR, tests/integration/other_models.rs).
echo "== models/testdata/make_examples.sh into target/trained: the committed example exports and goldens, byte for byte"
if ! diff <(grep -v '^#' models/requirements.txt | sort) <(grep -v '^#' .ci/requirements-train.txt | sort); then
    echo "FAIL: .ci/requirements-train.txt must pin what models/requirements.txt pins"
    exit 1
fi
trained=target/trained
rm -rf "$trained"
started=$SECONDS
if ! OUT_DIR=$trained PYTHON=target/test-tools/train/bin/python bash models/testdata/make_examples.sh >target/trained.log 2>&1; then
    cat target/trained.log
    echo "FAIL: models/testdata/make_examples.sh"
    exit 1
fi
echo "trained in $((SECONDS - started)) s"
committed=(models/testdata/breast-cancer-seven.json models/testdata/clinic-outcomes-gbc.json models/testdata/clinic-outcomes.csv
    tests/golden/breast-cancer-seven/* tests/golden/clinic-outcomes-gbc/*)
if ! diff <(printf '%s\n' "${committed[@]}" | sort) <(cd "$trained" && find . -type f | sed 's#^\./##' | sort); then
    echo "FAIL: make_examples.sh wrote other files than the committed ones (< committed, > trained)"
    exit 1
fi
for f in "${committed[@]}"; do
    if [ "${f##*/}" = explanations.meta.json ]; then
        # The one difference by design: it names the export by its path, here under target/trained/.
        same() { sed "s#\"$trained/#\"#" "$trained/$f" | cmp "$f" -; }
    else
        same() { cmp "$f" "$trained/$f"; }
    fi
    same || { echo "FAIL: $f differs when trained afresh (diff $f $trained/$f)"; exit 1; }
done
echo "${#committed[@]} files equal"
SCORER_TRAINED_DIR="$PWD/$trained"
export SCORER_TRAINED_DIR

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
    echo "== another export's HTTP contract (seven other features, no rebuild): checked and fuzzed the same way"
    SCHEMATHESIS_MAX_TIME=30 bash tests/fuzz_openapi.sh models/testdata/breast-cancer-seven.json
    echo "== the drift page in headless Chromium: an alert file, a file too small to assess, a clean file"
    python3 tests/drift_browser.py
    echo "== the fuzz targets still compile against the library (cargo-fuzz runs them: fuzz/README.md)"
    CARGO_TARGET_DIR=target/fuzz-check cargo check --locked --quiet --manifest-path fuzz/Cargo.toml --bins
elif [ -s "$SCORER_CONTRACT_ANSWERS" ]; then
    echo "== the HTTP answers these tests recorded against openapi.yaml"
    target/test-tools/openapi/bin/python tests/openapi_check.py --answers "$SCORER_CONTRACT_ANSWERS"
fi
