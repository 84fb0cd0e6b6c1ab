#!/usr/bin/env bash
# Re-create the two example exports of other contracts (issue 20) and their goldens:
#   models/testdata/breast-cancer-seven.json   + tests/golden/breast-cancer-seven/
#   models/testdata/clinic-outcomes-gbc.json   + tests/golden/clinic-outcomes-gbc/
# (and models/testdata/clinic-outcomes.csv, the data of the second).
# Deterministic (same bytes every run with models/requirements.txt); takes seconds.
#   PYTHON=.venv/bin/python bash models/testdata/make_examples.sh
#
# OUT_DIR=DIR writes the same files under DIR instead, in the repository's layout
# (DIR/models/testdata/…, DIR/tests/golden/…), leaving the committed ones alone:
# tests/run.sh trains them so into target/trained/ and compares. The goldens'
# explanations.meta.json then names the export by its path under DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT_DIR:-.}
mkdir -p "$OUT/models/testdata"

"$PY" models/train.py \
  --features "mean radius,mean texture,mean smoothness,worst compactness,worst symmetry,area error,mean fractal dimension" \
  --no-grid --params n_estimators=300,max_depth=1,learning_rate=0.05 --random-rows 2000 \
  --name breast-cancer-seven \
  --out "$OUT/models/testdata/breast-cancer-seven.json" --golden-dir "$OUT/tests/golden/breast-cancer-seven"

"$PY" models/testdata/make_clinic_csv.py "$OUT/models/testdata/clinic-outcomes.csv"
"$PY" models/train.py \
  --data "$OUT/models/testdata/clinic-outcomes.csv" --target outcome \
  --no-grid --params n_estimators=150,max_depth=3,learning_rate=0.1 --random-rows 2000 \
  --out "$OUT/models/testdata/clinic-outcomes-gbc.json" --golden-dir "$OUT/tests/golden/clinic-outcomes-gbc"
