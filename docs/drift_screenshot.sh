#!/usr/bin/env bash
# The screenshots of docs/drift.md: the drift page of three files a lab might
# send (an alert file, a file too small to assess, a clean file), scored by
# `scorer score --html` and rendered by headless Chromium, as the suite's
# browser check (tests/drift_browser.py) renders and checks them, at the
# page's full height. Needs chromium (Debian: apt-get install -y chromium);
# pngquant keeps each PNG small (apt-get install -y pngquant).
#   bash docs/drift_screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin scorer
out=target/drift-pages
python3 tests/drift_browser.py --out "$out" --height "${HEIGHT:-2450}"
for page in alert not-assessed clean; do
    cp "$out/$page.png" "docs/drift-page-$page.png"
    # A 256-colour palette: a fifth of the size, no visible loss.
    if command -v pngquant >/dev/null; then
        pngquant --force --skip-if-larger --output "docs/drift-page-$page.png" -- "docs/drift-page-$page.png" || true
    fi
done
ls -l docs/drift-page-*.png
