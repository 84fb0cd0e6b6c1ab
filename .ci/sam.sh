#!/usr/bin/env bash
# What a deployer runs, offline: `sam validate --lint` and `sam build`.
#
#   bash .ci/sam.sh
#
# Installs aws-sam-cli (.ci/requirements-sam.txt) into target/tools/sam and
# cargo-lambda as .ci/package.sh does. `sam build --beta-features` (the
# rust-cargolambda build method is a beta feature) runs `cargo lambda build
# --release --arm64` for the template's default architecture: when
# `.ci/package.sh arm64` has already built it (as .ci/run does first), this is
# the same cargo build and takes seconds; on its own it is a full release
# build (~9 min of CPU on 2 cores). Then checks that SAM built the binary once
# and gave that one artifact to both functions.
#
# Measured (2 cores): installing aws-sam-cli ~60 s; `sam validate --lint` ~7 s;
# `sam build` after `.ci/package.sh arm64` ~3 s.
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_VENV=target/tools/sam
CL_VENV=target/tools/cargo-lambda
CARGO_LAMBDA_VERSION=1.9.2 # as .ci/package.sh
ZIGLANG_VERSION=0.17.1

if ! cmp -s .ci/requirements-sam.txt "$SAM_VENV/requirements.txt" 2>/dev/null; then
    echo "== installing aws-sam-cli into $SAM_VENV"
    rm -rf "$SAM_VENV" && mkdir -p "$(dirname "$SAM_VENV")"
    python3 -m venv "$SAM_VENV"
    "$SAM_VENV/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements-sam.txt
    cp .ci/requirements-sam.txt "$SAM_VENV/requirements.txt"
fi
if ! "$CL_VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION "; then
    echo "== installing cargo-lambda $CARGO_LAMBDA_VERSION into $CL_VENV"
    rm -rf "$CL_VENV" && mkdir -p "$(dirname "$CL_VENV")"
    python3 -m venv "$CL_VENV"
    "$CL_VENV/bin/pip" install --quiet --disable-pip-version-check \
        "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    echo "== installing Rust target aarch64-unknown-linux-gnu (the template's default architecture)"
    timeout 300 rustup target add aarch64-unknown-linux-gnu
fi
export PATH="$PWD/$CL_VENV/bin:$PWD/$SAM_VENV/bin:$PATH"
# Offline: a region for the SAM translator, no telemetry, no update check.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0

echo "== $(sam --version)"
started=$(date +%s)
sam validate --lint --template template.yaml
echo "   sam validate --lint: $(($(date +%s) - started)) s"

started=$(date +%s)
rm -rf .aws-sam/build
sam build --beta-features --template template.yaml
echo "   sam build: $(($(date +%s) - started)) s"

"$SAM_VENV/bin/python" - <<'PY'
import os, sys, yaml

class Loader(yaml.SafeLoader):
    pass

# Keep CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values.
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
built = yaml.load(open(".aws-sam/build/template.yaml", encoding="utf-8"), Loader=Loader)
uris = {k: r["Properties"].get("CodeUri") for k, r in built["Resources"].items() if r.get("Type") == "AWS::Serverless::Function"}
want = {"ApiFunction", "BatchFunction"}
if set(uris) != want:
    sys.exit(f"FAIL: built template: CodeUri of {sorted(want)} expected, found {uris}")
if len(set(uris.values())) != 1:
    sys.exit(f"FAIL: the functions got different artifacts (one binary must be built once): {uris}")
path = os.path.join(".aws-sam/build", next(iter(uris.values())), "bootstrap")
with open(path, "rb") as f:
    head = f.read(20)
machine = int.from_bytes(head[18:20], "little")
if head[:4] != b"\x7fELF" or machine != 183:  # EM_AARCH64
    sys.exit(f"FAIL: {path} is not an arm64 ELF executable (e_machine {machine})")
if not os.access(path, os.X_OK):
    sys.exit(f"FAIL: {path} is not executable")
print(f"   one artifact for both functions: {path} (arm64, {os.path.getsize(path)} bytes)")
PY
