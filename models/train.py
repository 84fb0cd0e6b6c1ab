#!/usr/bin/env python3
"""Train the breast-cancer gradient-boosted tree model and export it for the Rust service.

Re-implements the reference procedure (see ../README.md and models/README.md):
load_breast_cancer with the target flipped (1 = malignant), an 80/20 split
(random_state 42), RFECV feature selection, GridSearchCV model selection, refit
on the training split. Writes:

  models/breast-cancer-gbc.json   the ensemble in the documented export format
  tests/golden/*.csv              sklearn's predictions, checked by `cargo test`

Usage (from the repository root, Python 3.11):
  python3 -m venv .venv && .venv/bin/pip install -r models/requirements.txt
  .venv/bin/python models/train.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.feature_selection import RFECV
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, train_test_split

ROOT = Path(__file__).resolve().parent.parent
FORMAT = "scorer-gbdt"
FORMAT_VERSION = 1
MODEL_NAME = "breast-cancer-gbc"

# Dataset column name -> the JSON name clinic software sends.
API_NAMES = {
    "mean concave points": "meanConcavePoints",
    "worst radius": "worstRadius",
    "worst texture": "worstTexture",
    "worst area": "worstArea",
    "worst concave points": "worstConcavePoints",
}


def base_estimator(**overrides) -> GradientBoostingClassifier:
    params = dict(learning_rate=0.01, n_estimators=1000, max_depth=3, max_features=9, random_state=42)
    params.update(overrides)
    return GradientBoostingClassifier(**params)


def train():
    data = load_breast_cancer()
    X = data.data
    y = 1 - data.target  # sklearn: 0 = malignant; we want 1 = malignant
    names = list(data.feature_names)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    cv = KFold(n_splits=10, shuffle=True, random_state=42)

    rfecv = RFECV(base_estimator(), step=1, min_features_to_select=5, cv=cv, scoring="f1", n_jobs=-1)
    rfecv.fit(X_train, y_train)
    selected = [i for i, keep in enumerate(rfecv.support_) if keep]
    print("selected features:", [names[i] for i in selected], flush=True)

    grid = GridSearchCV(
        base_estimator(),
        param_grid={"n_estimators": [500, 1000, 1500, 2000], "max_depth": [1, 2, 3]},
        cv=cv,
        scoring="f1",
        n_jobs=-1,
    )
    grid.fit(X_train[:, selected], y_train)
    print("best parameters:", grid.best_params_, "cv f1: %.4f" % grid.best_score_, flush=True)
    model = grid.best_estimator_  # refit=True: refit on the whole training split

    proba = model.predict_proba(X_test[:, selected])[:, 1]
    pred = model.predict(X_test[:, selected])
    metrics = {
        "test_rows": int(len(y_test)),
        "accuracy": float(accuracy_score(y_test, pred)),
        "f1": float(f1_score(y_test, pred)),
        "precision": float(precision_score(y_test, pred)),
        "recall": float(recall_score(y_test, pred)),
        "roc_auc": float(roc_auc_score(y_test, proba)),
        "cv_f1": float(grid.best_score_),
    }
    print("test metrics:", json.dumps(metrics), flush=True)
    return data, X, X_train, selected, model, grid.best_params_, metrics


def export(data, X_train, selected, model, best_params, metrics) -> dict:
    names = [str(data.feature_names[i]) for i in selected]
    features = []
    for col, name in zip(selected, names):
        features.append(
            {
                "name": API_NAMES[name],
                "dataset_name": name,
                "min": float(X_train[:, col].min()),
                "max": float(X_train[:, col].max()),
            }
        )
    init_raw = float(model._raw_predict_init(np.zeros((1, len(selected)), dtype=np.float32))[0, 0])
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        leaf = t.children_left == -1
        trees.append(
            {
                # Leaves: left = right = -1, feature = -1, threshold = 0.0 (unused).
                "left": [int(v) for v in t.children_left],
                "right": [int(v) for v in t.children_right],
                "feature": [-1 if is_leaf else int(f) for f, is_leaf in zip(t.feature, leaf)],
                "threshold": [0.0 if is_leaf else float(v) for v, is_leaf in zip(t.threshold, leaf)],
                "value": [float(v) for v in t.value[:, 0, 0]],
            }
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": MODEL_NAME,
        "sklearn_version": sklearn.__version__,
        "task": "binary classification: 1 = malignant, 0 = benign",
        "decision_rule": "a tree node sends x left when float32(x) <= threshold (float64)",
        "classes": [{"label": 0, "name": "benign"}, {"label": 1, "name": "malignant"}],
        "features": features,
        "init_raw_score": init_raw,
        "learning_rate": float(model.learning_rate),
        "parameters": {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in best_params.items()}
        | {"learning_rate": model.learning_rate, "max_features": model.max_features, "random_state": 42},
        "metrics": metrics,
        "trees": trees,
    }


def write_golden(model, X_all, selected, export_doc) -> None:
    """sklearn's own answers, to be matched exactly by the Rust model."""
    golden = ROOT / "tests" / "golden"
    golden.mkdir(parents=True, exist_ok=True)
    cols = [f["name"] for f in export_doc["features"]]
    rng = np.random.default_rng(20261125)

    def dump(path: Path, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64)
        proba = model.predict_proba(rows)
        pred = model.predict(rows)
        with path.open("w") as out:
            out.write(",".join(cols + ["prediction", "probability"]) + "\n")
            for r, p, pr in zip(rows, pred, proba[:, 1]):
                # repr() of a Python float is the shortest string that round-trips exactly.
                out.write(",".join([repr(float(v)) for v in r] + [str(int(p)), repr(float(pr))]) + "\n")
        print(f"wrote {path.relative_to(ROOT)} ({len(rows)} rows)")

    # (a) every dataset row
    dump(golden / "dataset.csv", X_all[:, selected])

    # (b) random observations well beyond the training ranges (uniform and log-uniform)
    hi = np.array([f["max"] for f in export_doc["features"]]) * 2.0
    uniform = rng.uniform(0.0, 1.0, size=(6000, len(cols))) * hi
    logu = np.exp(rng.uniform(np.log(1e-6), np.log(hi * 10), size=(4000, len(cols))))
    dump(golden / "random.csv", np.vstack([uniform, logu]))

    # (c) every split threshold, and one float32 ulp either side of it
    thresholds = sorted(
        {(int(f), float(t)) for tree in export_doc["trees"] for f, t in zip(tree["feature"], tree["threshold"]) if f >= 0}
    )
    base_rows = X_all[rng.choice(len(X_all), size=4, replace=False)][:, selected]
    rows = []
    for f, t in thresholds:
        t32 = np.float32(t)
        candidates = {t, float(t32), float(np.nextafter(t32, np.float32(0))), float(np.nextafter(t32, np.float32(np.inf)))}
        below = float(np.nextafter(np.float32(t32), np.float32(0))) if float(t32) > t else float(t32)
        candidates |= {below, float(np.nextafter(np.float32(below), np.float32(np.inf)))}
        for base in base_rows:
            for v in sorted(candidates):
                if v < 0:
                    continue
                row = base.copy()
                row[f] = v
                rows.append(row)
    dump(golden / "thresholds.csv", np.array(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "models" / f"{MODEL_NAME}.json"))
    args = parser.parse_args()

    data, X_all, X_train, selected, model, best_params, metrics = train()
    doc = export(data, X_train, selected, model, best_params, metrics)
    text = json.dumps(doc, indent=None, separators=(",", ":")) + "\n"
    Path(args.out).write_text(text)
    print(f"wrote {args.out}  sha256 {hashlib.sha256(text.encode()).hexdigest()}")
    write_golden(model, X_all, selected, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
