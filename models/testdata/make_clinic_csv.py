#!/usr/bin/env python3
"""Write models/testdata/clinic-outcomes.csv: a small synthetic data set of another shape
than the breast-cancer data, for `train.py --data` (issue 20). Deterministic: the same
numpy (models/requirements.txt) gives the same bytes.

400 rows; four numeric columns whose names exercise the API-name rule
("Cell Size (um)" -> cellSizeUm, "blood-pressure" -> bloodPressure, "age" -> age,
"2nd opinion score" -> f2ndOpinionScore) and a 0/1 target column "outcome".
Not real data: the outcome is drawn from a made-up logistic model of the four.

    .venv/bin/python models/testdata/make_clinic_csv.py [OUT.csv]

OUT.csv (default: models/testdata/clinic-outcomes.csv beside this script) lets a check
write a fresh copy elsewhere without touching the committed file.
"""
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "clinic-outcomes.csv"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    rng = np.random.default_rng(20261203)
    n = 400
    cell = rng.gamma(shape=6.0, scale=2.0, size=n)  # ~12 um
    bp = rng.normal(125.0, 15.0, size=n).clip(80, 200)
    age = rng.integers(25, 90, size=n)
    opinion = rng.uniform(0.0, 10.0, size=n)
    logit = 0.25 * (cell - 12.0) + 0.04 * (bp - 125.0) + 0.05 * (age - 55) + 0.3 * (opinion - 5.0)
    outcome = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    lines = ['"Cell Size (um)",blood-pressure,age,2nd opinion score,outcome']
    for c, b, a, o, y in zip(cell, bp, age, opinion, outcome):
        lines.append(f"{c:.2f},{b:.0f},{a},{o:.1f},{y}")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} ({n} rows, {outcome.sum()} with outcome 1)")


if __name__ == "__main__":
    main()
