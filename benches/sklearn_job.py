"""The batch job a Python user would write instead of `scorer score`, for
benches/compare.sh: pandas read_csv -> sklearn predict_proba -> to_csv, on
the same fitted model as the shipped export.

  python benches/sklearn_job.py fit MODEL.pkl        # fit it (models/train.py, pinned), check, pickle
  python benches/sklearn_job.py score MODEL.pkl IN.csv OUT.csv

`fit` refits the shipped model with models/train.py's own code (same data,
split and random_state; the export's features pinned and its chosen
parameters given, so no RFECV or grid search is run) and refuses to write
the pickle unless its predict_proba equals sklearn's golden probabilities
(tests/golden/dataset.csv, random.csv) exactly: the same fitted model.
"""

import json
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fit(out: Path) -> None:
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT / "models"))
    import train

    doc = json.loads((ROOT / "models/breast-cancer-gbc.json").read_text())
    params = {k: doc["parameters"][k] for k in ("max_depth", "n_estimators", "learning_rate", "max_features")}
    pinned = ",".join(f["dataset_name"] for f in doc["features"])
    plan = train.plan(["--features", pinned, "--no-grid", "--params", ",".join(f"{k}={v}" for k, v in params.items())])
    model = train.train(plan).model
    api = [f.get("api_name", f["name"]) for f in doc["features"]]
    for golden in ("dataset.csv", "random.csv"):
        g = pd.read_csv(ROOT / "tests/golden" / golden, float_precision="round_trip")
        p = model.predict_proba(g[api].to_numpy())[:, 1]
        if not np.array_equal(p, g["probability"].to_numpy()):
            sys.exit(f"the refitted model is not the shipped one: {golden} probabilities differ")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps({"model": model, "features": api}))
    print(f"{out}: the shipped model, refitted; predict_proba equals the golden files exactly", file=sys.stderr)


def score(model_path: Path, src: Path, dst: Path) -> None:
    import pandas as pd

    saved = pickle.loads(model_path.read_bytes())
    frame = pd.read_csv(src)
    p = saved["model"].predict_proba(frame[saved["features"]].to_numpy())[:, 1]
    frame["prediction"] = (p > 0.5).astype(int)
    frame["probability"] = p
    frame.to_csv(dst, index=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["fit"] and len(sys.argv) == 3:
        fit(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["score"] and len(sys.argv) == 5:
        score(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit(__doc__)
