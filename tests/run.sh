#!/usr/bin/env bash
# The test command (README): brings up what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== template: cfn-lint and the breaks it must catch"
bash tests/template_lint.sh

echo "== cargo test"
cargo test --locked "$@"
