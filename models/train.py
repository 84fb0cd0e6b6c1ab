#!/usr/bin/env python3
"""Train a gradient-boosted tree model and export it for the Rust service.

With no options it re-runs the reference procedure and reproduces the shipped
model bit for bit (see models/README.md): load_breast_cancer with the target
flipped (1 = malignant), an 80/20 split (random_state 42), RFECV feature
selection, GridSearchCV model selection, refit on the training split.

Options change one step each (all are checked before any training starts):

  --features "mean radius,mean texture,..."   pin the features (dataset names, in
                                  this order) instead of running RFECV
  --data FILE.csv --target COLUMN train on a CSV with a 0/1 target column instead of
                                  sklearn's breast-cancer data (every other column is
                                  a candidate feature; it must be numeric, finite,
                                  non-negative and never missing, or left out with
                                  --features)
  --name NAME                     the export's name (default: breast-cancer-gbc; with
                                  --data, the CSV's file stem + "-gbc")
  --class-names "NEG,POS"         names of the labels 0 and 1 (default: benign,malignant;
                                  with --data, "0","1")
  --no-grid                       skip GridSearchCV: fit the base estimator as it is
  --params "k=v,..."              override base-estimator parameters (used by RFECV, the
                                  grid and --no-grid; the grid still sets n_estimators
                                  and max_depth)
  --out PATH, --golden-dir DIR    where the export and its golden files go (default:
                                  models/breast-cancer-gbc.json and tests/golden/; give
                                  both or neither)
  --random-rows N                 rows in the random golden set (default 10000)
  --format-version {2,3}          3 (default) carries the whole contract; 2 is the
                                  shipped layout (a projection of 3: same bytes as
                                  before for the same model)

API names (the JSON keys clients send) follow one rule, `api_name()`: camelCase
of the dataset name, split on every run of characters other than ASCII letters
and digits; the first word lower-cased, each later word with its first letter
upper-cased and the rest lower-cased; a name that would start with a digit gets
the prefix "f". Two candidate columns with the same API name are an error.

Writes (nothing is written unless every step succeeded):

  <out>                           the export (models/README.md, "Export format")
  <golden-dir>/{dataset,random,thresholds}.csv
                                  sklearn's predictions on the data's rows, random rows
                                  and rows on and beside every split threshold
  <golden-dir>/explanations.csv   shap's TreeExplainer on the same rows
  <golden-dir>/training_rows.csv  which dataset rows form the training split
  <golden-dir>/explanations.meta.json
                                  the library versions and the sha256 of each model explained
  only for the reference procedure (no --data, --features, --no-grid, --params):
  <out's directory>/testdata/gbc-depth{2,3}.json, <golden-dir>/explanations-depth{2,3}.csv
                                  two small deeper models and shap's values for them,
                                  to test general TreeSHAP (the shipped model is stumps)

Usage (from the repository root, Python 3.11):
  python3 -m venv .venv && .venv/bin/pip install -r models/requirements.txt
  .venv/bin/python models/train.py
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import tempfile
import re
import sys
import time
from dataclasses import dataclass, field
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
FORMAT_VERSION = 3
MODEL_NAME = "breast-cancer-gbc"
DEFAULT_OUT = ROOT / "models" / f"{MODEL_NAME}.json"
DEFAULT_GOLDEN_DIR = ROOT / "tests" / "golden"
DEFAULT_CLASSES = ("benign", "malignant")
BREAST_CANCER_SOURCE = "sklearn.datasets.load_breast_cancer"

BASE_PARAMS = dict(learning_rate=0.01, n_estimators=1000, max_depth=3, max_features=9, random_state=42)
SPLIT = dict(test_size=0.2, random_state=42)
CV = dict(n_splits=10, shuffle=True, random_state=42)
RFECV_SETTINGS = dict(step=1, min_features_to_select=5, scoring="f1")
PARAM_GRID = {"n_estimators": [500, 1000, 1500, 2000], "max_depth": [1, 2, 3]}
RANDOM_ROWS = 10_000
API_PREFIX = "f"  # for an API name that would start with a digit


class UsageError(Exception):
    """A bad option or input, reported before any training."""


# ---- API names ----------------------------------------------------------------------


def api_name(dataset_name: str) -> str:
    """camelCase of a dataset column name: the one rule for the names clients send.

    'mean concave points' -> 'meanConcavePoints', 'Cell Size (um)' -> 'cellSizeUm',
    'blood-pressure' -> 'bloodPressure', '2nd opinion' -> 'f2ndOpinion'."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", dataset_name) if w]
    if not words:
        raise UsageError(f"column {dataset_name!r} has no ASCII letter or digit to make an API name from")
    name = words[0].lower() + "".join(w[0].upper() + w[1:].lower() for w in words[1:])
    return API_PREFIX + name if name[0].isdigit() else name


def api_names(dataset_names: list[str]) -> dict[str, str]:
    """Every column's API name; two columns with the same API name are an error."""
    seen: dict[str, str] = {}
    for n in dataset_names:
        a = api_name(n)
        if a in seen:
            raise UsageError(f"columns {seen[a]!r} and {n!r} both have the API name {a!r}; rename one (or leave one out with --features)")
        seen[a] = n
    return {n: a for a, n in seen.items()}


# ---- data -----------------------------------------------------------------------------


@dataclass
class Dataset:
    X: np.ndarray  # every candidate column, float64
    y: np.ndarray  # 0/1
    names: list[str]  # candidate columns' dataset names
    target: str
    info: dict  # the export's "data" object (without the split)
    classes: tuple[str, str] = DEFAULT_CLASSES
    default_name: str = MODEL_NAME


MISSING = {"", "na", "nan", "null", "none", "n/a"}


def load_default() -> Dataset:
    data = load_breast_cancer()
    return Dataset(
        X=data.data,
        y=1 - data.target,  # sklearn: 0 = malignant; we want 1 = malignant
        names=[str(n) for n in data.feature_names],
        target="diagnosis",
        info={
            "source": BREAST_CANCER_SOURCE,
            "rows": int(len(data.data)),
            "columns": int(data.data.shape[1]),
            "target_encoding": "1 - load_breast_cancer().target (1 = malignant)",
        },
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_csv(path: Path, target: str, only: list[str] | None) -> Dataset:
    """A CSV with a header row. The target column holds 0 and 1; every other column (or
    only those of `only`) must be numeric, finite, non-negative and never missing."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"--data {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"--data {path}: not UTF-8 ({e})") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows = [r for r in rows if r]  # blank lines
    if len(rows) < 2:
        raise UsageError(f"--data {path}: needs a header row and data rows")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise UsageError(f"--data {path}: line {i} has {len(r)} fields, the header {len(header)}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UsageError(f"--data {path}: duplicate column names {dupes}")
    if target not in header:
        raise UsageError(f"--target {target!r} is not a column of {path}; columns: {', '.join(header)}")
    candidates = [h for h in header if h != target]
    if only is not None:
        candidates = only  # checked against the header by the caller
    problems = []

    def column(name: str) -> np.ndarray | None:
        j = header.index(name)
        cells = [r[j].strip() for r in body]
        missing = sum(c.lower() in MISSING for c in cells)
        if missing:
            problems.append(f"column {name!r}: {missing} of {len(cells)} rows have no value")
            return None
        values = []
        bad = []
        for c in cells:
            try:
                values.append(float(c))
            except ValueError:
                bad.append(c)
        if bad:
            problems.append(f"column {name!r} is not numeric ({len(bad)} rows, e.g. {bad[0]!r})")
            return None
        v = np.array(values, dtype=np.float64)
        if not np.isfinite(v).all():
            problems.append(f"column {name!r}: {int((~np.isfinite(v)).sum())} rows are not finite")
            return None
        if name != target and (v < 0).any():
            problems.append(f"column {name!r}: {int((v < 0).sum())} rows are negative (the service accepts only non-negative measurements)")
            return None
        if name != target and not np.isfinite(v.astype(np.float32)).all():
            problems.append(f"column {name!r}: values beyond float32's range")
            return None
        return v

    y = column(target)
    if y is not None:
        labels = set(np.unique(y).tolist())
        if not labels <= {0.0, 1.0} or len(labels) < 2:
            problems.append(f"--target {target!r} must hold both 0 and 1 and nothing else (it has {sorted(labels)[:5]})")
    cols = [column(n) for n in candidates]
    if problems:
        hint = "" if only is not None else "\n  (leave columns out by naming the ones to use with --features)"
        raise UsageError(f"--data {path}:\n  " + "\n  ".join(problems) + hint)
    if not candidates:
        raise UsageError(f"--data {path}: no feature columns besides {target!r}")
    return Dataset(
        X=np.column_stack(cols),
        y=y.astype(np.int64),
        names=list(candidates),
        target=target,
        info={
            "source": "csv",
            "file": path.name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "rows": len(body),
            "columns": len(header),
        },
        classes=("0", "1"),
        default_name=(slug(path.stem) or "model") + "-gbc",
    )


# ---- options --------------------------------------------------------------------------


def parse_value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


def parse_params(text: str | None) -> dict:
    if not text:
        return {}
    params = {}
    allowed = GradientBoostingClassifier().get_params()
    for item in text.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in allowed:
            raise UsageError(f"--params {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(allowed))}")
        params[key] = parse_value(value.strip())
    try:
        base_estimator(**params)._validate_params()
    except (ValueError, TypeError) as e:
        raise UsageError(f"--params: {e}") from None
    return params


def writable_target(path: Path, what: str, is_dir: bool) -> None:
    """The path can be created: it is (or will be) a file/directory, under a writable directory."""
    if path.exists() and path.is_dir() != is_dir:
        raise UsageError(f"{what} {path} exists and is {'not ' if is_dir else ''}a directory")
    parent = path if is_dir else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: {parent} is not a directory")
    try:  # a probe, not os.access: root may "access" what it cannot write (/proc, a read-only mount)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot write in {parent} ({e.strerror})") from None


@dataclass
class Plan:
    data: Dataset
    pinned: list[str] | None
    name: str
    classes: tuple[str, str]
    grid: bool
    params: dict
    out: Path
    golden_dir: Path
    format_version: int
    reference: bool  # the reference procedure: also write the deeper test models
    random_rows: int = 10_000
    api: dict[str, str] = field(default_factory=dict)

    @property
    def test_model_dir(self) -> Path:
        return self.out.parent / "testdata"


def plan(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", help="comma-separated dataset column names: pin these, skip RFECV")
    parser.add_argument("--data", help="a CSV file to train on instead of sklearn's breast-cancer data")
    parser.add_argument("--target", help="with --data: the 0/1 target column")
    parser.add_argument("--name", help="the export's name")
    parser.add_argument("--class-names", help='names of labels 0 and 1, "NEG,POS"')
    parser.add_argument("--no-grid", action="store_true", help="no GridSearchCV: fit the base estimator as it is")
    parser.add_argument("--params", help='base-estimator overrides, "n_estimators=100,learning_rate=0.1"')
    parser.add_argument("--out", help=f"the export (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--golden-dir", help=f"its golden files (default {DEFAULT_GOLDEN_DIR.relative_to(ROOT)}/)")
    parser.add_argument("--format-version", type=int, choices=[2, 3], default=FORMAT_VERSION)
    parser.add_argument("--random-rows", type=int, default=RANDOM_ROWS, help="rows of the random golden set (default 10000)")
    args = parser.parse_args(argv)

    if args.random_rows < 10 or args.random_rows % 10:
        raise UsageError("--random-rows: a positive multiple of 10")
    if (args.data is None) != (args.target is None):
        raise UsageError("--data and --target go together")
    pinned = None
    if args.features is not None:
        pinned = [f.strip() for f in args.features.split(",") if f.strip()]
        if not pinned:
            raise UsageError("--features is empty")
        dupes = sorted({f for f in pinned if pinned.count(f) > 1})
        if dupes:
            raise UsageError(f"--features names {dupes} twice")
    if args.data is not None:
        path = Path(args.data)
        if pinned is not None:
            # Check the names against the header first, so that unused columns are never read.
            with_header = load_csv_header(path)
            check_pinned(pinned, [h for h in with_header if h != args.target])
        data = load_csv(path, args.target, pinned)
    else:
        data = load_default()
        if pinned is not None:
            check_pinned(pinned, data.names)
    api = api_names(pinned if pinned is not None else data.names)

    classes = data.classes
    if args.class_names is not None:
        classes = tuple(c.strip() for c in args.class_names.split(","))
        if len(classes) != 2 or not all(classes) or classes[0] == classes[1]:
            raise UsageError(f"--class-names {args.class_names!r}: two different non-empty names, label 0's first")
    name = args.name if args.name is not None else data.default_name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise UsageError(f"--name {name!r}: letters, digits, '.', '_', '-' (it becomes part of the model version)")
    params = parse_params(args.params)

    out = Path(args.out).resolve() if args.out else DEFAULT_OUT
    golden_dir = Path(args.golden_dir).resolve() if args.golden_dir else DEFAULT_GOLDEN_DIR
    if (out == DEFAULT_OUT) != (golden_dir == DEFAULT_GOLDEN_DIR):
        raise UsageError(
            f"the goldens in {DEFAULT_GOLDEN_DIR.relative_to(ROOT)}/ describe {DEFAULT_OUT.relative_to(ROOT)}: "
            "give both --out and --golden-dir (elsewhere), or neither"
        )
    writable_target(out, "--out", is_dir=False)
    writable_target(golden_dir, "--golden-dir", is_dir=True)
    reference = args.data is None and pinned is None and not args.no_grid and not params
    p = Plan(data, pinned, name, classes, not args.no_grid, params, out, golden_dir, args.format_version, reference, args.random_rows, api)
    if reference:
        shipped = ROOT / "models" / "testdata"
        if out != DEFAULT_OUT and p.test_model_dir.resolve() == shipped:
            raise UsageError(f"the deeper test models would overwrite {shipped.relative_to(ROOT)}/: put --out in another directory")
        writable_target(p.test_model_dir, "the test models' directory", is_dir=True)
    return p


def load_csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except OSError as e:
        raise UsageError(f"--data {path}: {e.strerror}") from None


def check_pinned(pinned: list[str], available: list[str]) -> None:
    unknown = [f for f in pinned if f not in available]
    if unknown:
        raise UsageError(
            f"--features: unknown {', '.join(repr(f) for f in unknown)}; the available columns are:\n  "
            + "\n  ".join(available)
        )


# ---- training -------------------------------------------------------------------------


def base_estimator(**overrides) -> GradientBoostingClassifier:
    params = dict(BASE_PARAMS)
    params.update(overrides)
    return GradientBoostingClassifier(**params)


@dataclass
class Trained:
    X_train: np.ndarray  # all candidate columns
    y_train: np.ndarray
    train_rows: np.ndarray
    selected: list[int]  # indices into the candidate columns, in model order
    model: GradientBoostingClassifier
    parameters: dict
    metrics: dict
    feature_selection: dict
    model_selection: dict


def cv_settings() -> dict:
    return {"kind": "KFold"} | CV


def train(p: Plan) -> Trained:
    X, y, names = p.data.X, p.data.y, p.data.names
    X_train, X_test, y_train, y_test = train_test_split(X, y, **SPLIT)
    # The same split of the row numbers: which dataset rows the model was trained on.
    train_rows, _ = train_test_split(np.arange(len(X)), **SPLIT)
    assert (X[train_rows] == X_train).all()
    cv = KFold(**CV)
    estimator_params = BASE_PARAMS | p.params

    if p.pinned is not None:
        selected = [names.index(f) for f in p.pinned]
        feature_selection = {"method": "pinned", "features": list(p.pinned)}
    elif len(names) <= RFECV_SETTINGS["min_features_to_select"]:
        selected = list(range(len(names)))
        feature_selection = {"method": "all", "reason": f"{len(names)} candidate columns, RFECV keeps at least {RFECV_SETTINGS['min_features_to_select']}"}
    else:
        t0 = time.monotonic()
        rfecv = RFECV(base_estimator(**p.params), cv=cv, n_jobs=-1, **RFECV_SETTINGS)
        rfecv.fit(X_train, y_train)
        selected = [i for i, keep in enumerate(rfecv.support_) if keep]
        feature_selection = {"method": "rfecv"} | RFECV_SETTINGS | {
            "cv": cv_settings(),
            "estimator": estimator_params,
            "candidates": len(names),
            "selected": len(selected),
        }
        print(f"RFECV: {time.monotonic() - t0:.0f} s", flush=True)
    print("features:", [names[i] for i in selected], flush=True)

    Xs_train, Xs_test = X_train[:, selected], X_test[:, selected]
    if p.grid:
        t0 = time.monotonic()
        grid = GridSearchCV(base_estimator(**p.params), param_grid=PARAM_GRID, cv=cv, scoring="f1", n_jobs=-1)
        grid.fit(Xs_train, y_train)
        print("best parameters:", grid.best_params_, "cv f1: %.4f" % grid.best_score_, f"({time.monotonic() - t0:.0f} s)", flush=True)
        model = grid.best_estimator_  # refit=True: refit on the whole training split
        chosen = dict(grid.best_params_)
        model_selection = {
            "method": "grid_search",
            "param_grid": PARAM_GRID,
            "cv": cv_settings(),
            "scoring": "f1",
            "best_score": float(grid.best_score_),
        }
    else:
        model = base_estimator(**p.params).fit(Xs_train, y_train)
        chosen = {"max_depth": model.max_depth, "n_estimators": model.n_estimators}
        model_selection = {"method": "fixed"}
    parameters = {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in chosen.items()} | {
        "learning_rate": model.learning_rate,
        "max_features": model.max_features,
        "random_state": model.random_state,
    }
    parameters |= {k: v for k, v in p.params.items() if k not in parameters}

    proba = model.predict_proba(Xs_test)[:, 1]
    pred = model.predict(Xs_test)
    metrics = {
        "test_rows": int(len(y_test)),
        "accuracy": float(accuracy_score(y_test, pred)),
        "f1": float(f1_score(y_test, pred, zero_division=0)),
        "precision": float(precision_score(y_test, pred, zero_division=0)),
        "recall": float(recall_score(y_test, pred, zero_division=0)),
    }
    if len(np.unique(y_test)) == 2:
        metrics["roc_auc"] = float(roc_auc_score(y_test, proba))
    if p.grid:
        metrics["cv_f1"] = float(grid.best_score_)
    print("test metrics:", json.dumps(metrics), flush=True)
    return Trained(X_train, y_train, train_rows, selected, model, parameters, metrics, feature_selection, model_selection)


# ---- the export -----------------------------------------------------------------------


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


@dataclass
class Contract:
    """What the export says beyond the trees: format version 3's additions."""

    classes: tuple[str, str] = DEFAULT_CLASSES
    target: str = "diagnosis"
    api: dict[str, str] | None = None  # dataset name -> API name (None: the rule)
    feature_selection: dict | None = None
    model_selection: dict | None = None
    data: dict | None = None


def export(
    names: list[str],
    X_train: np.ndarray,
    model: GradientBoostingClassifier,
    name: str,
    parameters: dict,
    metrics: dict,
    contract: Contract | None = None,
) -> dict:
    """The export document (format version 3). `X_train` holds the model's columns only.
    `as_version_2` gives the version 2 document."""
    c = contract or Contract()
    api = c.api or {n: api_name(n) for n in names}
    neg, pos = c.classes
    features = []
    for col, dataset_name in enumerate(names):
        features.append(
            {
                "name": api[dataset_name],
                "api_name": api[dataset_name],
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
                "name": api[dataset_name],
                "mean": float(X_train[:, col].mean()),
                "thresholds": edges[col],
                "counts": [int(c) for c in counts],
            }
        )
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "sklearn_version": sklearn.__version__,
        "task": f"binary classification: 1 = {pos}, 0 = {neg}" if (neg, pos) != ("0", "1") else f"binary classification: {c.target} 1 or 0",
        "decision_rule": "a tree node sends x left when float32(x) <= threshold (float64)",
        "classes": [{"label": 0, "name": neg}, {"label": 1, "name": pos}],
        "target": {"name": c.target, "positive_label": 1, "positive_class": pos},
        "features": features,
    }
    for key in ("feature_selection", "model_selection", "data"):
        if getattr(c, key) is not None:
            doc[key] = getattr(c, key)
    doc |= {
        "init_raw_score": init_raw,
        "learning_rate": float(model.learning_rate),
        "parameters": parameters,
        "metrics": metrics,
        "training_profile": {
            "rows": int(len(X_train)),
            "predicted_positive": int(predicted.sum()),
            "predicted_malignant": int(predicted.sum()),
            "features": profile_features,
        },
        "trees": trees,
    }
    return doc


V3_ONLY = ("target", "feature_selection", "model_selection", "data")


def as_version_2(doc: dict) -> dict:
    """The version 2 document: version 3 without its additions (same key order as before)."""
    v2 = {k: v for k, v in doc.items() if k not in V3_ONLY}
    v2["format_version"] = 2
    v2["features"] = [{k: v for k, v in f.items() if k != "api_name"} for f in doc["features"]]
    v2["training_profile"] = {k: v for k, v in doc["training_profile"].items() if k != "predicted_positive"}
    return v2


def export_text(doc: dict, format_version: int) -> str:
    if format_version == 2:
        doc = as_version_2(doc)
    return json.dumps(doc, indent=None, separators=(",", ":")) + "\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def shown(path: Path) -> str:
    """A path as files name each other: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ---- golden files -----------------------------------------------------------------------


class Outputs:
    """Every file to write, kept in memory until everything has been computed."""

    def __init__(self):
        self.files: dict[Path, str] = {}
        self.notes: dict[Path, str] = {}

    def add(self, path: Path, text: str, note: str = "") -> None:
        path = path.resolve()
        if path in self.files:
            raise RuntimeError(f"{path} would be written twice")
        self.files[path] = text
        self.notes[path] = note

    def write(self) -> None:
        for path, text in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)
            print(f"wrote {shown(path)} {self.notes.get(path, '')}".rstrip(), flush=True)


def predictions_csv(model, cols: list[str], rows: np.ndarray) -> str:
    rows = np.asarray(rows, dtype=np.float64)
    proba = model.predict_proba(rows)
    pred = model.predict(rows)
    lines = [",".join(cols + ["prediction", "probability"])]
    for r, p, pr in zip(rows, pred, proba[:, 1]):
        # repr() of a Python float is the shortest string that round-trips exactly.
        lines.append(",".join([repr(float(v)) for v in r] + [str(int(p)), repr(float(pr))]))
    return "\n".join(lines) + "\n"


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


def golden_sets(X_all: np.ndarray, doc: dict, random_rows: int = RANDOM_ROWS) -> dict[str, np.ndarray]:
    """The rows the goldens answer for: every dataset row, `random_rows` random rows (60 %
    uniform, 40 % log-uniform) and the threshold rows. A function of the data (model
    columns) and the export only."""
    rng = np.random.default_rng(20261125)
    n = len(doc["features"])
    sets = {"dataset": np.asarray(X_all, dtype=np.float64)}
    # Random observations well beyond the training ranges (uniform and log-uniform).
    # A feature whose training maximum is 0 gets the range of 1.0 instead.
    hi = np.array([f["max"] for f in doc["features"]]) * 2.0
    hi = np.where(hi > 0, hi, 1.0)
    uniform = rng.uniform(0.0, 1.0, size=(random_rows * 6 // 10, n)) * hi
    logu = np.exp(rng.uniform(np.log(1e-6), np.log(hi * 10), size=(random_rows * 4 // 10, n)))
    sets["random"] = np.vstack([uniform, logu])
    # Every split threshold, and one float32 ulp either side of it, on 4 dataset rows.
    base_rows = X_all[rng.choice(len(X_all), size=min(4, len(X_all)), replace=False)]
    sets["thresholds"] = threshold_rows(doc, base_rows)
    return sets


def training_rows_csv(train_rows: np.ndarray, y_train: np.ndarray) -> str:
    """The training split as row numbers of dataset.csv (0 = its first data row), in
    training order, with the label: lets tests rebuild the training profile independently."""
    return "dataset_row,label\n" + "".join(f"{int(r)},{int(label)}\n" for r, label in zip(train_rows, y_train))


def explanations_csv(model, doc: dict, sets: dict[str, np.ndarray]) -> tuple[str, float]:
    """shap's exact path-dependent TreeSHAP values (raw output: log-odds) for every row of `sets`.

    Columns: set, row (index in that set), the values, sklearn's decision_function,
    shap's expected_value, and one contribution per feature in model order."""
    explainer = shap.TreeExplainer(model)  # no background data: path-dependent, raw (log-odds) output
    expected = float(np.asarray(explainer.expected_value).reshape(-1)[0])
    cols = [f["name"] for f in doc["features"]]
    lines = [",".join(["set", "row"] + cols + ["raw_score", "base_value"] + [f"contribution_{c}" for c in cols])]
    for set_name, rows in sets.items():
        phi = np.asarray(explainer.shap_values(rows, check_additivity=True), dtype=np.float64)
        raw = model.decision_function(rows)
        worst = float(np.max(np.abs(expected + phi.sum(axis=1) - raw)))
        print(f"  {set_name}: {len(rows)} rows, largest |E + sum(phi) - decision_function| {worst:.1e}")
        for i, (r, p, d) in enumerate(zip(rows, phi, raw)):
            fields = [set_name, str(i)] + [repr(float(v)) for v in r] + [repr(float(d)), repr(expected)]
            lines.append(",".join(fields + [repr(float(v)) for v in p]))
    return "\n".join(lines) + "\n", expected


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


def test_models(p: Plan, names, X_train, y_train, X_all, sets, out: Outputs) -> dict[str, dict]:
    written = {}
    rng = np.random.default_rng(7)
    for name, params in TEST_MODELS.items():
        weights = rng.uniform(0.5, 2.0, size=len(y_train)) if "subsample" in params else None
        model = GradientBoostingClassifier(**params).fit(X_train, y_train, sample_weight=weights)
        doc = export(names, X_train, model, f"test-{name}", params | {"sample_weight": weights is not None}, {})
        path = p.test_model_dir / f"{name}.json"
        text = export_text(doc, p.format_version)
        digest = sha256(text)
        out.add(path, text, f"sha256 {digest}")
        rows = {
            "dataset": X_all,
            "random": sets["random"][:2000],
            "thresholds": threshold_rows(doc, sets["dataset"][[0, 19]]),
        }
        golden = f"explanations-{name.removeprefix('gbc-')}.csv"
        text, expected = explanations_csv(model, doc, rows)
        out.add(p.golden_dir / golden, text)
        written[golden] = {"model": shown(path), "model_sha256": digest, "expected_value": expected}
    return written


def explanations_meta(entries: dict[str, dict]) -> str:
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
    return json.dumps(meta, indent=2) + "\n"


# ---- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    try:
        p = plan(argv)
    except UsageError as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 2
    started = time.monotonic()
    t = train(p)
    names = [p.data.names[i] for i in t.selected]
    X_all = p.data.X[:, t.selected]
    X_train = t.X_train[:, t.selected]
    contract = Contract(
        classes=p.classes,
        target=p.data.target,
        api={n: p.api[n] for n in names},
        feature_selection=t.feature_selection,
        model_selection=t.model_selection,
        data=p.data.info | {"split": SPLIT | {"train_rows": int(len(X_train)), "test_rows": int(len(X_all) - len(X_train))}},
    )
    doc = export(names, X_train, t.model, p.name, t.parameters, t.metrics, contract)
    out = Outputs()
    text = export_text(doc, p.format_version)
    digest = sha256(text)
    out.add(p.out, text, f"(format version {p.format_version})  sha256 {digest}")

    cols = [f["name"] for f in doc["features"]]
    sets = golden_sets(X_all, doc, p.random_rows)
    for set_name, rows in sets.items():
        out.add(p.golden_dir / f"{set_name}.csv", predictions_csv(t.model, cols, rows), f"({len(rows)} rows)")
    out.add(p.golden_dir / "training_rows.csv", training_rows_csv(t.train_rows, t.y_train), f"({len(t.train_rows)} rows)")
    text, expected = explanations_csv(t.model, doc, sets)
    out.add(p.golden_dir / "explanations.csv", text, f"(shap {shap.__version__}, expected_value {expected!r})")
    entries = {"explanations.csv": {"model": shown(p.out), "model_sha256": digest, "expected_value": expected}}
    if p.reference:
        entries |= test_models(p, names, X_train, t.y_train, X_all, sets, out)
    out.add(p.golden_dir / "explanations.meta.json", explanations_meta(entries))
    out.write()
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
