#!/usr/bin/env python3
"""Train the breast-cancer gradient-boosted tree model and export it for the Rust service.

Re-implements the reference procedure (see docs/model.md and models/README.md):
load_breast_cancer with the target flipped (1 = malignant), an 80/20 split
(random_state 42), RFECV feature selection, GridSearchCV model selection, refit
on the training split. Writes:

  models/breast-cancer-gbc.json   the ensemble in the documented export format (version 2:
                                  node covers and the training profile)
  tests/golden/{dataset,random,thresholds}.csv
                                  sklearn's predictions, checked by `cargo test`
  tests/golden/explanations.csv   shap's TreeExplainer on the same rows
  models/testdata/gbc-depth{2,3}.json, tests/golden/explanations-depth{2,3}.csv
                                  two small deeper models and shap's values for them,
                                  to test general TreeSHAP (the shipped model is stumps)
  tests/golden/explanations.meta.json
                                  the library versions and the sha256 of each model explained
  tests/golden/training_rows.csv  which dataset rows form the training split (for drift tests)

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
import shap
import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.feature_selection import RFECV
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, train_test_split

ROOT = Path(__file__).resolve().parent.parent
FORMAT = "scorer-gbdt"
FORMAT_VERSION = 2
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
    # The same split of the row numbers: which dataset rows the model was trained on.
    train_rows, _ = train_test_split(np.arange(len(X)), test_size=0.2, random_state=42)
    assert (X[train_rows] == X_train).all()
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
    return data, X, X_train, y_train, train_rows, selected, model, grid.best_params_, metrics


def split_thresholds(trees: list[dict], n_features: int) -> list[list[float]]:
    """Per feature, the distinct split thresholds of every tree, ascending (the model's bin edges)."""
    per_feature: list[set[float]] = [set() for _ in range(n_features)]
    for tree in trees:
        for f, t in zip(tree["feature"], tree["threshold"]):
            if f >= 0:
                per_feature[f].add(t)
    return [sorted(ts) for ts in per_feature]


def bin_index(thresholds: list[float], values: np.ndarray) -> np.ndarray:
    """The model's rule: bin j holds the values with thresholds[j-1] < float32(x) <= thresholds[j]."""
    x32 = np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)
    return np.searchsorted(np.asarray(thresholds, dtype=np.float64), x32, side="left")


def export(
    names: list[str], X_train: np.ndarray, model: GradientBoostingClassifier, name: str, parameters: dict, metrics: dict
) -> dict:
    """The export document (format version 2). `X_train` holds the model's columns only."""
    features = []
    for col, dataset_name in enumerate(names):
        features.append(
            {
                "name": API_NAMES[dataset_name],
                "dataset_name": dataset_name,
                "min": float(X_train[:, col].min()),
                "max": float(X_train[:, col].max()),
            }
        )
    init_raw = float(model._raw_predict_init(np.zeros((1, len(names)), dtype=np.float32))[0, 0])
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
                # The (weighted) number of training rows that reached each node: what
                # path-dependent TreeSHAP weighs the branches by.
                "cover": [float(v) for v in t.weighted_n_node_samples],
            }
        )
    # The training profile, for drift reports: how the training rows fall into the
    # bins the model can tell apart, with the model's own float32 rule.
    edges = split_thresholds(trees, len(names))
    predicted = model.predict(X_train)
    profile_features = []
    for col, dataset_name in enumerate(names):
        bins = bin_index(edges[col], X_train[:, col])
        counts = np.bincount(bins, minlength=len(edges[col]) + 1)
        profile_features.append(
            {
                "name": API_NAMES[dataset_name],
                "mean": float(X_train[:, col].mean()),
                "thresholds": edges[col],
                "counts": [int(c) for c in counts],
            }
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "sklearn_version": sklearn.__version__,
        "task": "binary classification: 1 = malignant, 0 = benign",
        "decision_rule": "a tree node sends x left when float32(x) <= threshold (float64)",
        "classes": [{"label": 0, "name": "benign"}, {"label": 1, "name": "malignant"}],
        "features": features,
        "init_raw_score": init_raw,
        "learning_rate": float(model.learning_rate),
        "parameters": parameters,
        "metrics": metrics,
        "training_profile": {
            "rows": int(len(X_train)),
            "predicted_malignant": int(predicted.sum()),
            "features": profile_features,
        },
        "trees": trees,
    }


def write_export(doc: dict, path: Path) -> str:
    text = json.dumps(doc, indent=None, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    print(f"wrote {path.relative_to(ROOT)}  sha256 {digest}", flush=True)
    return digest


def threshold_rows(doc: dict, base_rows: np.ndarray) -> np.ndarray:
    """Each split threshold, and the float32 values on and either side of it, on each base row."""
    thresholds = sorted(
        {(int(f), float(t)) for tree in doc["trees"] for f, t in zip(tree["feature"], tree["threshold"]) if f >= 0}
    )
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
    return np.array(rows)


def write_golden(model, X_all, export_doc) -> dict[str, np.ndarray]:
    """sklearn's own answers, to be matched exactly by the Rust model. Returns the row sets."""
    golden = ROOT / "tests" / "golden"
    golden.mkdir(parents=True, exist_ok=True)
    cols = [f["name"] for f in export_doc["features"]]
    rng = np.random.default_rng(20261125)

    def dump(path: Path, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)
        proba = model.predict_proba(rows)
        pred = model.predict(rows)
        with path.open("w") as out:
            out.write(",".join(cols + ["prediction", "probability"]) + "\n")
            for r, p, pr in zip(rows, pred, proba[:, 1]):
                # repr() of a Python float is the shortest string that round-trips exactly.
                out.write(",".join([repr(float(v)) for v in r] + [str(int(p)), repr(float(pr))]) + "\n")
        print(f"wrote {path.relative_to(ROOT)} ({len(rows)} rows)")
        return rows

    sets = {}
    # (a) every dataset row
    sets["dataset"] = dump(golden / "dataset.csv", X_all)

    # (b) random observations well beyond the training ranges (uniform and log-uniform)
    hi = np.array([f["max"] for f in export_doc["features"]]) * 2.0
    uniform = rng.uniform(0.0, 1.0, size=(6000, len(cols))) * hi
    logu = np.exp(rng.uniform(np.log(1e-6), np.log(hi * 10), size=(4000, len(cols))))
    sets["random"] = dump(golden / "random.csv", np.vstack([uniform, logu]))

    # (c) every split threshold, and one float32 ulp either side of it
    base_rows = X_all[rng.choice(len(X_all), size=4, replace=False)]
    sets["thresholds"] = dump(golden / "thresholds.csv", threshold_rows(export_doc, base_rows))
    return sets


def write_training_rows(train_rows: np.ndarray, y_train: np.ndarray) -> None:
    """The training split as row numbers of tests/golden/dataset.csv (0 = its first data row), in
    training order, with the label: lets tests rebuild the training profile independently."""
    path = ROOT / "tests" / "golden" / "training_rows.csv"
    with path.open("w") as out:
        out.write("dataset_row,label\n")
        for r, label in zip(train_rows, y_train):
            out.write(f"{int(r)},{int(label)}\n")
    print(f"wrote {path.relative_to(ROOT)} ({len(train_rows)} rows)")


def write_explanations(model, doc: dict, sets: dict[str, np.ndarray], path: Path) -> float:
    """shap's exact path-dependent TreeSHAP values (raw output: log-odds) for every row of `sets`.

    Columns: set, row (index in that set), the five values, sklearn's decision_function,
    shap's expected_value, and one contribution per feature in model order."""
    explainer = shap.TreeExplainer(model)  # no background data: path-dependent, raw (log-odds) output
    expected = float(np.asarray(explainer.expected_value).reshape(-1)[0])
    cols = [f["name"] for f in doc["features"]]
    with path.open("w") as out:
        out.write(",".join(["set", "row"] + cols + ["raw_score", "base_value"] + [f"contribution_{c}" for c in cols]) + "\n")
        for set_name, rows in sets.items():
            phi = np.asarray(explainer.shap_values(rows, check_additivity=True), dtype=np.float64)
            raw = model.decision_function(rows)
            worst = float(np.max(np.abs(expected + phi.sum(axis=1) - raw)))
            print(f"  {set_name}: {len(rows)} rows, largest |E + sum(phi) - decision_function| {worst:.1e}")
            for i, (r, p, d) in enumerate(zip(rows, phi, raw)):
                fields = [set_name, str(i)] + [repr(float(v)) for v in r] + [repr(float(d)), repr(expected)]
                out.write(",".join(fields + [repr(float(v)) for v in p]) + "\n")
    print(f"wrote {path.relative_to(ROOT)} (shap {shap.__version__}, expected_value {expected!r})", flush=True)
    return expected


# Two small deeper models over the same five columns: the shipped model is all
# stumps (explained by tables), these exercise general TreeSHAP and the tree walk.
# depth2: 40 trees of depth 2. depth3: row subsampling and random sample weights,
# so covers are fractional and differ from row counts; min_samples_split=220
# stops some branches early, so it mixes 5 stumps, 9 trees of depth 2 and 16 of
# depth 3 (tables and TreeSHAP in one model).
TEST_MODELS = {
    "gbc-depth2": dict(n_estimators=40, max_depth=2, learning_rate=0.1, random_state=7),
    "gbc-depth3": dict(
        n_estimators=30, max_depth=3, learning_rate=0.1, subsample=0.8, min_samples_split=220, random_state=7
    ),
}


def write_test_models(names, X_train, y_train, X_all, sets) -> dict[str, dict]:
    written = {}
    rng = np.random.default_rng(7)
    for name, params in TEST_MODELS.items():
        weights = rng.uniform(0.5, 2.0, size=len(y_train)) if "subsample" in params else None
        model = GradientBoostingClassifier(**params).fit(X_train, y_train, sample_weight=weights)
        doc = export(names, X_train, model, f"test-{name}", params | {"sample_weight": weights is not None}, {})
        digest = write_export(doc, ROOT / "models" / "testdata" / f"{name}.json")
        rows = {
            "dataset": X_all,
            "random": sets["random"][:2000],
            "thresholds": threshold_rows(doc, sets["dataset"][[0, 19]]),
        }
        expected = write_explanations(model, doc, rows, ROOT / "tests" / "golden" / f"explanations-{name.removeprefix('gbc-')}.csv")
        written[f"explanations-{name.removeprefix('gbc-')}.csv"] = {
            "model": f"models/testdata/{name}.json",
            "model_sha256": digest,
            "expected_value": expected,
        }
    return written


def write_explanations_meta(entries: dict[str, dict]) -> None:
    import numba  # shap's own dependency: recorded because it is part of what computed the values

    meta = {
        "generator": "models/train.py",
        "shap_version": shap.__version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "numba_version": numba.__version__,
        "explainer": "shap.TreeExplainer(model) (feature_perturbation='tree_path_dependent', model_output='raw')",
        "files": entries,
    }
    path = ROOT / "tests" / "golden" / "explanations.meta.json"
    path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "models" / f"{MODEL_NAME}.json"))
    args = parser.parse_args()

    data, X_all, X_train, y_train, train_rows, selected, model, best_params, metrics = train()
    names = [str(data.feature_names[i]) for i in selected]
    parameters = {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in best_params.items()} | {
        "learning_rate": model.learning_rate,
        "max_features": model.max_features,
        "random_state": 42,
    }
    doc = export(names, X_train[:, selected], model, MODEL_NAME, parameters, metrics)
    digest = write_export(doc, Path(args.out))
    sets = write_golden(model, X_all[:, selected], doc)
    write_training_rows(train_rows, y_train)
    expected = write_explanations(model, doc, sets, ROOT / "tests" / "golden" / "explanations.csv")
    entries = {
        "explanations.csv": {
            "model": f"models/{MODEL_NAME}.json",
            "model_sha256": digest,
            "expected_value": expected,
        }
    }
    entries |= write_test_models(names, X_train[:, selected], y_train, X_all[:, selected], sets)
    write_explanations_meta(entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
