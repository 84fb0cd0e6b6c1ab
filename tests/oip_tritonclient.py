"""The real tritonclient[http] against the Open Inference Protocol routes.

Usage: oip_tritonclient.py URL EXPORT GOLDEN_DIR
  URL         host:port of `scorer serve` or of the Function URL proxy
  EXPORT      the model export the service loaded (its name and features)
  GOLDEN_DIR  sklearn's and shap's answers for it (dataset.csv, explanations.csv)

Run by tests/integration/oip.rs. Exits non-zero with a message on the first
difference; prints one summary line otherwise.
"""

import csv
import json
import sys
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

PROBABILITY_TOLERANCE = 1e-12
SHAP_TOLERANCE = 1e-9
MAX_ROWS = 10_000


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def goldens(export, golden_dir):
    names = [f["name"] for f in export["features"]]
    with open(f"{golden_dir}/dataset.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    values = np.array([[float(r[n]) for n in names] for r in rows], dtype=np.float64)
    labels = np.array([int(r["prediction"]) for r in rows], dtype=np.int64)
    proba = np.array([float(r["probability"]) for r in rows], dtype=np.float64)
    with open(f"{golden_dir}/explanations.csv", newline="") as f:
        shap_rows = [r for r in csv.DictReader(f) if r["set"] == "dataset"]
    check(len(shap_rows) == len(rows), "explanations.csv has every dataset row")
    contributions = np.array([[float(r[f"contribution_{n}"]) for n in names] for r in shap_rows])
    base = float(shap_rows[0]["base_value"])
    return names, values, labels, proba, contributions, base


def assert_answer(what, result, labels, proba, contributions, base, explained=True):
    got_labels = result.as_numpy("predict")
    check(got_labels is not None and got_labels.dtype == np.int64, f"{what}: predict is INT64")
    check(np.array_equal(got_labels, labels), f"{what}: labels equal sklearn's")
    got_proba = result.as_numpy("predict_proba")
    check(got_proba.shape == (len(labels), 2), f"{what}: predict_proba is [N, 2]: {got_proba.shape}")
    check(np.max(np.abs(got_proba[:, 1] - proba)) <= PROBABILITY_TOLERANCE, f"{what}: probabilities within 1e-12")
    check(np.array_equal(got_proba[:, 0], 1.0 - got_proba[:, 1]), f"{what}: predict_proba rows are [1 - p, p]")
    if explained:
        got = result.as_numpy("explanation")
        check(got.shape == contributions.shape, f"{what}: explanation is [N, F]: {got.shape}")
        check(np.max(np.abs(got - contributions)) <= SHAP_TOLERANCE, f"{what}: contributions within 1e-9 of shap")
        out_base = result.get_output("explanation")["parameters"]["base_value"]
        check(abs(out_base - base) <= SHAP_TOLERANCE, f"{what}: base value within 1e-9 of shap")
    else:
        check(result.get_output("explanation") is None, f"{what}: no explanation unless asked")


def matrix_input(values, binary, datatype="FP64"):
    tensor = httpclient.InferInput("input-0", list(values.shape), datatype)
    tensor.set_data_from_numpy(values, binary_data=binary)
    return tensor


def expect_error(what, status, call):
    try:
        call()
    except InferenceServerException as e:
        check(e.status() == str(status), f"{what}: status {e.status()} instead of {status} ({e.message()})")
        check(e.message() and "None" not in e.message(), f"{what}: the protocol's error message: {e.message()!r}")
        return e.message()
    fail(f"{what}: answered 200")


def main():
    url, export_path, golden_dir = sys.argv[1:4]
    with open(export_path) as f:
        export = json.load(f)
    model = export["name"]
    names, values, labels, proba, contributions, base = goldens(export, golden_dir)
    client = httpclient.InferenceServerClient(url=url)

    check(client.is_server_live(), "live")
    check(client.is_server_ready(), "ready")
    check(client.is_model_ready(model), "model ready")
    check(not client.is_model_ready("no-such-model"), "an unknown model is not ready")
    metadata = client.get_model_metadata(model)
    check([i["name"] for i in metadata["inputs"]] == names, f"model metadata inputs are the export's features: {metadata}")
    version = metadata["versions"][0]
    check(client.get_model_metadata(model, model_version=version)["name"] == model, "metadata by version")
    check("binary_tensor_data" in client.get_server_metadata()["extensions"], "server metadata")

    n = len(labels)
    for binary in (False, True):
        what = f"[{n}, {len(names)}] FP64, binary_data={binary}"
        outputs = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in ("predict", "predict_proba", "explanation")]
        result = client.infer(model, [matrix_input(values, binary)], outputs=outputs, request_id="r-1")
        check(result.get_response()["id"] == "r-1", f"{what}: the id echoed")
        assert_answer(what, result, labels, proba, contributions, base)
    # tritonclient's defaults: binary input, no outputs named (binary predict and predict_proba).
    result = client.infer(model, [matrix_input(values, True)], model_version=version)
    assert_answer("defaults", result, labels, proba, contributions, base, explained=False)
    # FP32, as a float32 frame would be sent: sklearn casts to float32 too.
    result = client.infer(model, [matrix_input(values.astype(np.float32), True, "FP32")])
    check(np.array_equal(result.as_numpy("predict"), labels), "FP32: labels equal sklearn's")

    # One tensor per feature, named by their dataset names (MLServer's pandas codec).
    for binary in (False, True):
        inputs = []
        for j, name in enumerate(export["features"]):
            column = httpclient.InferInput(name["dataset_name"], [n, 1], "FP64")
            column.set_data_from_numpy(values[:, j : j + 1].copy(), binary_data=binary)
            inputs.append(column)
        outputs = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in ("predict", "predict_proba", "explanation")]
        result = client.infer(model, inputs, outputs=outputs, parameters={"content_type": "pd"})
        assert_answer(f"per-feature tensors, binary_data={binary}", result, labels, proba, contributions, base)

    # Malformed requests: the protocol's error, a 4xx, never a 5xx.
    f = len(names)
    row = values[:1]
    expect_error("wrong shape", 400, lambda: client.infer(model, [matrix_input(values[:, : f - 1].copy(), True)]))
    ints = httpclient.InferInput("input-0", [1, f], "INT64")
    ints.set_data_from_numpy(row.astype(np.int64))
    expect_error("wrong datatype", 400, lambda: client.infer(model, [ints]))
    negative = row.copy()
    negative[0, 1] = -negative[0, 1]
    message = expect_error("a negative value", 400, lambda: client.infer(model, [matrix_input(negative, False)]))
    check(f"'{names[1]}' must not be negative" in message and "row 0" in message, f"names row, feature, rule: {message}")
    check(repr(float(negative[0, 1])) not in message, f"quotes no value: {message}")
    over = np.repeat(row, MAX_ROWS + 1, axis=0)
    expect_error("N over the bound", 400, lambda: client.infer(model, [matrix_input(over, True)]))
    expect_error("unknown model", 404, lambda: client.infer("no-such-model", [matrix_input(row, True)]))
    expect_error("unknown version", 404, lambda: client.infer(model, [matrix_input(row, True)], model_version="0"))
    expect_error("unknown model metadata", 404, lambda: client.get_model_metadata("no-such-model"))
    # tritonclient checks the data length itself: the same request without it.
    body = json.dumps({"inputs": [{"name": "x", "shape": [2, f], "datatype": "FP64", "data": row[0].tolist()}]}).encode()
    request = urllib.request.Request(f"http://{url}/v2/models/{model}/infer", data=body, method="POST")
    try:
        urllib.request.urlopen(request)
        fail("data length: answered 200")
    except urllib.error.HTTPError as e:
        answer = json.loads(e.read())
        check(e.code == 400 and "error" in answer, f"data length: {e.code} {answer}")

    print(f"tritonclient {httpclient.__name__}: {n} rows x {f} features agree with sklearn and shap; errors checked")


if __name__ == "__main__":
    main()
