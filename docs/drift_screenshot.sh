#!/usr/bin/env bash
# Renders the drift report of the dataset (samples/wdbc.csv) and of a shifted
# copy (worst area x 1.35, worst texture + 6), and screenshots both pages with
# headless Chromium (Debian: apt-get install -y chromium; pngquant optional) into docs/.
#   bash docs/drift_screenshot.sh
# The pages come from examples/drift_report.rs, which can shift columns; it
# feeds the same DriftStats and renders the same page as `scorer score --html`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "needs chromium (apt-get install -y chromium)"; exit 1; }
out=${OUT_DIR:-target/drift-pages}
mkdir -p "$out"
cargo build --quiet --example drift_report
report=target/debug/examples/drift_report
$report samples/wdbc.csv --source incoming/wdbc.csv --json "$out/dataset.json" --html "$out/dataset.html"
$report samples/wdbc.csv --source incoming/lab-7/wdbc-shifted.csv --scale worstArea=1.35 --add worstTexture=6 \
    --json "$out/shifted.json" --html "$out/shifted.html"

shoot() { # shoot PAGE PNG HEIGHT
    local profile
    profile=$(mktemp -d)
    # Nothing may be fetched: no network, no component updates, a throwaway profile.
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --hide-scrollbars --user-data-dir="$profile" \
        --window-size="1200,$3" --screenshot="$2" "file://$PWD/$1" >/dev/null 2>&1
    rm -rf "$profile"
}
# The whole page at 1200 px wide (its height for this model's five features).
shoot "$out/shifted.html" docs/drift-report-shifted.png "${HEIGHT:-1880}"
shoot "$out/dataset.html" docs/drift-report-dataset.png "${HEIGHT:-1880}"
# A 256-colour palette keeps each PNG well under 200 KB (apt-get install -y pngquant).
if command -v pngquant >/dev/null; then
    pngquant --force --skip-if-larger --output docs/drift-report-shifted.png -- docs/drift-report-shifted.png || true
    pngquant --force --skip-if-larger --output docs/drift-report-dataset.png -- docs/drift-report-dataset.png || true
fi
ls -l docs/drift-report-*.png
