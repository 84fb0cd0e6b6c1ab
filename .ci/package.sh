#!/usr/bin/env bash
# Builds the Lambda deployment zip(s) with cargo-lambda and checks them.
#
#   bash .ci/package.sh                 # x86_64, and arm64 if its Rust target is (or can be) installed
#   bash .ci/package.sh x86_64          # one architecture
#   bash .ci/package.sh arm64           # one architecture (fails if arm64 cannot be built)
#   REQUIRE_ARM64=1 bash .ci/package.sh # fail, instead of warning, when arm64 cannot be built
#
# cargo-lambda (and the zig it links with) comes from PyPI into a venv under
# target/tools/cargo-lambda. Output: target/lambda/<arch>/scorer/bootstrap.zip.
# Each zip is checked: it holds an executable `bootstrap` ELF for its
# architecture, needs no newer glibc than Amazon Linux 2023's (provided.al2023),
# and fits Lambda's limits (50 MB zipped for a direct upload, 250 MB unzipped).
# A release build uses the fat-LTO release profile of Cargo.toml: ~5 min per
# architecture on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LAMBDA_VERSION=1.9.2 # with ziglang 0.17.1, as measured
ZIGLANG_VERSION=0.17.1
TOOLS=target/tools/cargo-lambda
MAX_ZIPPED=$((50 * 1024 * 1024))
MAX_UNZIPPED=$((250 * 1024 * 1024))
AL2023_GLIBC=2.34

die() { echo "FAIL: $*" >&2; exit 1; }

# --- which architectures -----------------------------------------------------
want_x86=0 want_arm=0 arm_required=${REQUIRE_ARM64:-0}
if [ $# -eq 0 ]; then
    want_x86=1 want_arm=1
fi
for arg in "$@"; do
    case $arg in
        x86_64 | x86-64 | amd64) want_x86=1 ;;
        arm64 | aarch64) want_arm=1 arm_required=1 ;;
        *) die "unknown architecture '$arg' (x86_64 or arm64)" ;;
    esac
done

# --- cargo-lambda -------------------------------------------------------------
if ! "$TOOLS/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION "; then
    echo "== installing cargo-lambda $CARGO_LAMBDA_VERSION (PyPI, with ziglang) into $TOOLS"
    rm -rf "$TOOLS"
    mkdir -p "$(dirname "$TOOLS")"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check \
        "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
fi
export PATH="$PWD/$TOOLS/bin:$PATH"
echo "== $(cargo lambda --version), zig $("$TOOLS/bin/python" -m ziglang version)"
rustc --version

# --- arm64 needs the aarch64 standard library -----------------------------------
arm_skip_reason=""
if [ "$want_arm" = 1 ]; then
    if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
        echo "== arm64: Rust target aarch64-unknown-linux-gnu is installed"
    else
        echo "== arm64: installing Rust target aarch64-unknown-linux-gnu (rustup, from static.rust-lang.org)"
        if ! out=$(timeout 300 rustup target add aarch64-unknown-linux-gnu 2>&1); then
            printf '%s\n' "$out" | sed -n 1,12p >&2
            arm_skip_reason="'rustup target add aarch64-unknown-linux-gnu' failed (no aarch64 standard library; is static.rust-lang.org reachable?): $(printf '%s\n' "$out" | grep -i -m1 error || true)"
        fi
    fi
    if [ -n "$arm_skip_reason" ]; then
        if [ "$arm_required" = 1 ]; then
            die "arm64 cannot be built: $arm_skip_reason"
        fi
        echo "WARNING: arm64 NOT built: $arm_skip_reason" >&2
        echo "WARNING: deploy with the template parameter Architecture=x86_64 or build arm64 elsewhere." >&2
        want_arm=0
    fi
fi

# --- build and check ---------------------------------------------------------------
# check_zip ZIP ELF_MACHINE: bootstrap present, executable, right architecture,
# glibc no newer than AL2023's, sizes within Lambda's limits.
check_zip() {
    local zip=$1 machine=$2 dir
    [ -f "$zip" ] || die "$zip was not produced"
    dir=$workdir/$machine
    rm -rf "$dir" && mkdir -p "$dir"
    python3 - "$zip" "$dir" "$MAX_ZIPPED" "$MAX_UNZIPPED" <<'PY' || exit 1
import os, stat, sys, zipfile
path, out, max_zipped, max_unzipped = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with zipfile.ZipFile(path) as z:
    bad = z.testzip()
    if bad:
        sys.exit(f"FAIL: {path}: corrupt member {bad}")
    infos = z.infolist()
    names = [i.filename for i in infos]
    if "bootstrap" not in names:
        sys.exit(f"FAIL: {path} has no top-level 'bootstrap' (members: {names})")
    info = z.getinfo("bootstrap")
    mode = info.external_attr >> 16
    if not mode & stat.S_IXUSR:
        sys.exit(f"FAIL: {path}: bootstrap is not executable (mode {oct(mode)})")
    os.chmod(z.extract("bootstrap", out), 0o755)
zipped = os.path.getsize(path)
unzipped = sum(i.file_size for i in infos)
mib = lambda n: f"{n / 1048576:.2f} MiB"
print(f"   members:  {', '.join(names)}")
print(f"   zipped:   {zipped} bytes ({mib(zipped)}), limit {mib(max_zipped)}")
print(f"   unzipped: {unzipped} bytes ({mib(unzipped)}), limit {mib(max_unzipped)}")
if zipped > max_zipped:
    sys.exit(f"FAIL: {path} is {mib(zipped)} zipped: over Lambda's 50 MB direct-upload limit")
if unzipped > max_unzipped:
    sys.exit(f"FAIL: {path} is {mib(unzipped)} unzipped: over Lambda's 250 MB limit")
PY
    local elf=$dir/bootstrap got glibc
    got=$(readelf -h "$elf" | sed -n 's/^ *Machine: *//p')
    echo "   machine:  $got"
    case "$got" in *"$machine"*) ;; *) die "$zip: bootstrap is for '$got', expected $machine" ;; esac
    glibc=$(readelf -V "$elf" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    echo "   glibc:    needs ${glibc:-none} (provided.al2023 has $AL2023_GLIBC)"
    if [ -n "$glibc" ] && [ "$(printf '%s\n%s\n' "$glibc" "$AL2023_GLIBC" | sort -V | tail -1)" != "$AL2023_GLIBC" ]; then
        die "$zip: bootstrap needs glibc $glibc, newer than provided.al2023's $AL2023_GLIBC"
    fi
    # Sanity: the zipped binary is the function (x86_64 can even run here).
    if [ "$machine" = "X86-64" ] && [ "$(uname -m)" = x86_64 ]; then
        "$elf" --version || die "$zip: bootstrap does not run"
    fi
}

# build ARCH_FLAG ARCH_NAME ELF_MACHINE
build() {
    local flag=$1 arch=$2 machine=$3 started secs zip
    zip=target/lambda/$arch/scorer/bootstrap.zip
    echo "== cargo lambda build --release --locked --output-format zip $flag --lambda-dir target/lambda/$arch"
    rm -f "$zip"
    started=$(date +%s)
    cargo lambda build --release --locked --output-format zip "$flag" --lambda-dir "target/lambda/$arch"
    secs=$(($(date +%s) - started))
    echo "== $arch: built in ${secs}s: $zip"
    check_zip "$zip" "$machine"
    echo "   sha256:   $(sha256sum "$zip" | cut -d' ' -f1)"
    summary+=("$arch: $zip ($(stat -c %s "$zip") bytes zipped, built in ${secs}s)")
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
summary=()
if [ "$want_x86" = 1 ]; then build --x86-64 x86_64 X86-64; fi
if [ "$want_arm" = 1 ]; then build --arm64 arm64 AArch64; fi

echo "== packaged"
for line in "${summary[@]}"; do echo "   $line"; done
if [ -n "$arm_skip_reason" ]; then
    echo "   arm64: NOT built: $arm_skip_reason"
fi
