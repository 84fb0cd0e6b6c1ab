# Sourced by tests/run.sh and tests/fuzz_openapi.sh (from the repository root).
# tool_venv NAME: a venv under target/test-tools/NAME with .ci/requirements-NAME.txt,
# reinstalled whenever that list changes (the copy inside the venv is the stamp).
tool_venv() {
    local dir=target/test-tools/$1 req=.ci/requirements-$1.txt
    if ! cmp -s "$req" "$dir/requirements.txt" 2>/dev/null; then
        echo "== installing $1 into $dir"
        rm -rf "$dir"
        mkdir -p target/test-tools
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
        cp "$req" "$dir/requirements.txt"
    fi
}
