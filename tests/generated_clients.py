"""Clients generated from the served OpenAPI document, used as a user would.

    generated_clients.py --doc SERVED.json --url http://127.0.0.1:PORT --work DIR

tests/fuzz_openapi.sh runs it (in the `generators` venv, .ci/requirements-generators.txt)
against the `scorer serve` it started, with the document that serve answered to
GET /openapi.json. It generates, with no post-editing:

* a client with openapi-python-client (`--fail-on-warning`: a response it cannot
  type, which it would silently leave out, fails the run), then calls the
  service through it and checks that a prediction, an explained prediction,
  the model metadata, the document and 400/413 answers come back as the
  generated typed objects (attrs classes, enums), with every field typed;
* pydantic models with datamodel-code-generator, and validates the same
  answers with them, and checks they refuse answers the contract forbids.

Nothing here knows the model: the features and classes come from GET /.
"""

import argparse
import enum
import importlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path


def generate(doc: Path, work: Path) -> None:
    bin_dir = Path(sys.executable).parent
    # openapi-python-client runs ruff (installed beside it) on what it writes.
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    subprocess.run(
        [bin_dir / "openapi-python-client", "generate", "--path", doc, "--output-path", work / "scorer_client",
         "--meta", "none", "--overwrite", "--fail-on-warning"],
        check=True, env=env,
    )
    client_s = time.monotonic() - started
    started = time.monotonic()
    subprocess.run(
        [bin_dir / "datamodel-codegen", "--input", doc, "--input-file-type", "openapi",
         "--output-model-type", "pydantic_v2.BaseModel", "--formatters", "builtin",
         "--output", work / "scorer_models.py"],
        check=True, env=env,
    )
    models_s = time.monotonic() - started
    modules = sum(1 for _ in (work / "scorer_client").rglob("*.py"))
    print(f"openapi-python-client: {modules} modules in {client_s:.1f} s; "
          f"datamodel-code-generator: {len((work / 'scorer_models.py').read_text().splitlines())} lines "
          f"in {models_s:.1f} s")


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--doc", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    generate(args.doc, args.work)
    sys.path.insert(0, str(args.work))

    sc = importlib.import_module("scorer_client")
    m = importlib.import_module("scorer_client.models")
    api = importlib.import_module("scorer_client.api.default")
    predict = importlib.import_module("scorer_client.api.default.predict")
    metadata_op = importlib.import_module("scorer_client.api.default.model_metadata")
    document_op = importlib.import_module("scorer_client.api.default.openapi_document")
    types = importlib.import_module("scorer_client.types")
    pd = importlib.import_module("scorer_models")
    check(sorted(p.stem for p in Path(api.__file__).parent.glob("*.py") if p.stem != "__init__")
          == sorted(["model_metadata", "openapi_document", "predict", "oip_server_metadata", "oip_live", "oip_ready",
                     "oip_model_metadata", "oip_model_version_metadata", "oip_model_ready", "oip_model_version_ready",
                     "oip_infer", "oip_infer_version"]),
          "one module per operation: the seed contract's three and the Open Inference Protocol's nine")

    client = sc.Client(base_url=args.url, raise_on_unexpected_status=True)
    answers = []  # (pydantic model, raw body): validated with datamodel-code-generator's models below

    # GET /: the metadata, typed. Its features and classes drive the rest.
    r = metadata_op.sync_detailed(client=client)
    check(r.status_code == 200, f"GET / answered {r.status_code}")
    meta = r.parsed
    check(isinstance(meta, m.MetadataAnswer), f"GET / parsed as {type(meta)}")
    model = meta.model
    check(isinstance(model, m.ModelMetadata), "model is a ModelMetadata")
    check(meta.request_id == r.headers["x-request-id"], "requestId is the X-Request-Id header")
    check(all(isinstance(f, m.FeatureMetadata) for f in model.features), "features are FeatureMetadata")
    check(all(isinstance(f.name, m.FeatureMetadataName) for f in model.features), "feature names are an enum")
    check(all(isinstance(f.training_min, float) and isinstance(f.training_max, float) for f in model.features),
          "training ranges are floats")
    features = [f.name.value for f in model.features]
    check([c[0] for c in model.classes] == [0, 1] and all(isinstance(c[1], enum.Enum) for c in model.classes),
          f"classes are [label, name] pairs, the names an enum: {model.classes}")
    class_names = [c[1].value for c in model.classes]
    check(isinstance(model.trees, int) and isinstance(model.sha256, str), "trees, sha256 typed")
    answers.append((pd.MetadataAnswer, r.content))
    print(f"GET /: {model.name}, {len(features)} features, classes {class_names}")

    # POST /: a prediction, typed.
    values = {f.name.value: (f.training_min + f.training_max) / 2 for f in model.features}
    r = predict.sync_detailed(client=client, body=m.Observation.from_dict(values))
    check(r.status_code == 200, f"POST / answered {r.status_code}")
    answer = r.parsed
    check(isinstance(answer, m.PredictionAnswer), f"POST / parsed as {type(answer)}")
    check(isinstance(answer.prediction, m.PredictionAnswerPrediction), "prediction is an enum")
    check(isinstance(answer.label, m.PredictionAnswerLabel), "label is an enum")
    check(answer.label.value == class_names[answer.prediction.value], "label names the predicted class")
    check(isinstance(answer.probability, float) and 0 <= answer.probability <= 1, "probability is a float")
    check(answer.warnings == [], "a value in the training range gets no warning")
    check(isinstance(answer.explanation, types.Unset), "no explanation unless asked for")
    check(answer.model_version == model.version, "modelVersion is the metadata's version")
    answers.append((pd.PredictionAnswer, r.content))

    # POST /?explain=True (the flag is a string by its pattern: any case of
    # true/false, 1/0; "True" is what .NET writes): the explanation, typed, and
    # adding up to the probability.
    r = predict.sync_detailed(client=client, body=m.Observation.from_dict(values), explain="True")
    check(r.status_code == 200, f"POST /?explain=true answered {r.status_code}")
    explained = r.parsed
    check(isinstance(explained, m.PredictionAnswer), f"explained answer parsed as {type(explained)}")
    explanation = explained.explanation
    check(isinstance(explanation, m.Explanation), f"explanation is {type(explanation)}")
    check(isinstance(explanation.contributions, m.ExplanationContributions), "contributions are typed")
    contributions = explanation.contributions.to_dict()
    check(list(contributions) == features, f"contributions name the features in order: {list(contributions)}")
    check(all(isinstance(v, float) for v in contributions.values()), "contributions are floats")
    raw = explanation.base_value + sum(contributions.values())
    check(abs(1 / (1 + math.exp(-raw)) - explained.probability) < 1e-9, "baseValue + contributions give probability")
    check(explained.probability == answer.probability, "explaining does not change the answer")
    answers.append((pd.PredictionAnswer, r.content))

    # A 400 through the generated call: a negative value.
    first = features[0]
    r = predict.sync_detailed(client=client, body=m.Observation.from_dict({**values, first: -1.0}))
    check(r.status_code == 400, f"a negative value answered {r.status_code}")
    bad = r.parsed
    check(isinstance(bad, m.PredictResponse400), f"the 400 parsed as {type(bad)}")
    check(bad.status == m.PredictResponse400Status("400"), f"status {bad.status!r}")
    check(isinstance(bad.errors, list) and all(isinstance(e, m.ErrorItem) for e in bad.errors), "errors typed")
    check([(e.field.value, e.code.value) for e in bad.errors] == [(first, "negative")], f"errors {bad.errors}")
    check(isinstance(bad.errors[0].field, m.ErrorItemField) and isinstance(bad.errors[0].code, m.ErrorItemCode),
          "field and code are enums")
    check(bad.additional_keys == [], f"every field of the 400 is typed: {bad.additional_keys}")
    answers.append((pd.ErrorAnswer, r.content))

    # Bodies the generated Observation cannot express, sent raw and parsed with the generated classes.
    http = client.get_httpx_client()
    missing = features[-2:]
    r = http.post("/", json={k: v for k, v in values.items() if k not in missing})
    check(r.status_code == 400, f"missing values answered {r.status_code}")
    bad = m.PredictResponse400.from_dict(r.json())
    check([(e.field.value, e.code.value) for e in bad.errors] == [(f, "missing") for f in missing],
          f"missing values: {bad.errors}")
    answers.append((pd.ErrorAnswer, r.content))
    r = http.post("/", content=b"{", headers={"content-type": "application/json"})
    check(r.status_code == 400, f"a body that is not JSON answered {r.status_code}")
    bad = m.PredictResponse400.from_dict(r.json())
    check(isinstance(bad.reason, str) and bad.reason, "a body-level 400 has a reason")
    answers.append((pd.ErrorAnswer, r.content))
    r = http.post("/", content=b" " * 16385, headers={"content-type": "application/json"})
    check(r.status_code == 413, f"a body over 16 KiB answered {r.status_code}")
    too_large = m.PredictResponse413.from_dict(r.json())
    check(too_large.status == m.PredictResponse413Status("413"), f"status {too_large.status!r}")
    answers.append((pd.ErrorAnswer, r.content))

    # GET /openapi.json
    r = document_op.sync_detailed(client=client)
    check(isinstance(r.parsed, m.OpenapiDocumentResponse200) and r.parsed.openapi.startswith("3.1."),
          f"the document parsed as {type(r.parsed)}")

    # The generated client's classes refuse what the contract forbids.
    tampered = json.loads(answers[1][1])
    tampered["label"] = "not-a-class"
    try:
        m.PredictionAnswer.from_dict(tampered)
        raise AssertionError("openapi-python-client's PredictionAnswer took a label outside the classes")
    except ValueError:
        pass

    # datamodel-code-generator's pydantic models: every answer validates...
    for schema, body in answers:
        schema.model_validate_json(body)
    # ... and answers the contract forbids do not.
    pydantic = importlib.import_module("pydantic")
    meta_json = json.loads(answers[0][1])
    swapped = json.loads(answers[0][1])
    swapped["model"]["classes"] = [[0, class_names[1]], [1, class_names[0]]]
    extra = json.loads(answers[1][1])
    extra["score"] = 1
    no_id = json.loads(answers[1][1])
    del no_id["requestId"]
    wrong_feature = json.loads(answers[2][1])
    wrong_feature["explanation"]["contributions"]["notAFeature"] = 0.0
    for schema, body, what in [
        (pd.MetadataAnswer, swapped, "classes swapped"),
        (pd.PredictionAnswer, tampered, "a label outside the classes"),
        (pd.PredictionAnswer, extra, "an undocumented field"),
        (pd.PredictionAnswer, no_id, "no requestId"),
        (pd.PredictionAnswer, wrong_feature, "a contribution for no feature"),
    ]:
        try:
            schema.model_validate(body)
            raise AssertionError(f"datamodel-code-generator's {schema.__name__} took {what}")
        except pydantic.ValidationError:
            pass
    check(meta_json["model"]["classes"] == [[0, class_names[0]], [1, class_names[1]]], "classes as served")
    print(f"generated clients: {len(answers)} answers parsed as typed objects and validated; 6 forbidden ones refused")


if __name__ == "__main__":
    main()
