#!/usr/bin/env python3
"""Checks openapi.yaml, the HTTP contract as OpenAPI 3.1.

1. The YAML has no duplicate keys, and openapi-spec-validator accepts the document.
   Every operation documents a 2xx answer: a method or path that only ever
   answers 405 or 404 is no operation (a fuzzer such as Schemathesis would
   call it and count every answer a failure); those answers are the
   `MethodNotAllowed` and `NotFound` components.
2. Every example (request bodies, responses, response components) validates
   against its schema (JSON Schema 2020-12, $refs resolved in the document),
   and answers the contract forbids (an extra field, a missing contribution,
   `errors` on a 404, a wrong status) do not: the schemas are tight enough to
   catch drift.
3. With --answers FILE: each line of FILE is a recorded answer,
   {"method": "POST", "path": "/", "status": 200, "headers": {...}, "body": "<JSON text>"},
   checked against the operation's response (schema and required headers);
   a 405 only for a method the path has no operation for, against the
   MethodNotAllowed component, with `Allow` naming exactly the path's
   operations; a 404 only for a path the document has not, against NotFound.
   A served /openapi.json must equal this document as PyYAML reads it.
   With --require-all, FILE must also hold at least the answers of every kind
   in REQUIRED (so the check cannot pass on an empty or partial recording).
4. With --same-as JSON_FILE: the document equals that JSON (`scorer openapi
   --json`), so PyYAML reads the YAML `scorer openapi` prints as serde does.

--doc picks the document (default openapi.yaml; tests/fuzz_openapi.sh passes
what `scorer openapi` prints for a model). Nothing here names a feature: the
checks hold for the document of any model.

Usage: python tests/openapi_check.py [--doc FILE] [--answers FILE [--require-all]] [--same-as JSON] [--write-json OUT]
Requires .ci/requirements-openapi.txt.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parent.parent
DOC_URI = "urn:scorer:openapi"


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a contract must not."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def nulls(value, where="#"):
    """Where the document holds a YAML null: in this document, always a slip (an
    unquoted `a, b: c` inside `{ }` silently makes a key `b` with no value)."""
    if value is None:
        yield where
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from nulls(v, f"{where}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from nulls(v, f"{where}/{i}")


def load(path: Path) -> dict:
    doc = yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    slips = list(nulls(doc))
    if slips:
        raise SystemExit(f"FAIL: {path} has null values (unquoted text with ', x:' inside braces?): {slips}")
    return doc


def pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    def __init__(self, doc: dict):
        self.doc = doc
        registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
        self.registry = registry

    def resolve(self, obj: dict) -> tuple[dict, str]:
        """Follows an OpenAPI-level $ref (responses, request bodies); returns the object and its pointer."""
        where = None
        while "$ref" in obj:
            where = obj["$ref"]
            target = self.doc
            for part in where.removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            obj = target
        return obj, where

    def validator(self, schema_pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": DOC_URI + schema_pointer}, registry=self.registry)

    def operations(self, path: str) -> list[str]:
        """The methods the path has operations for, upper case, in the document's order."""
        item = self.doc["paths"].get(path, {})
        return [m.upper() for m in item if m in HTTP_METHODS]

    def operation(self, method: str, path: str) -> dict:
        op = self.doc["paths"].get(path, {}).get(method.lower())
        if op is None:
            raise KeyError(f"{method} {path}: no operation in the document")
        return op

    def response(self, method: str, path: str, status: int | str) -> tuple[dict, str]:
        """The response object and the JSON pointer of its application/json schema."""
        op = self.operation(method, path)
        status = str(status)
        raw = op["responses"].get(status)
        if raw is None:
            raise KeyError(f"{method} {path}: status {status} is not in the document")
        return self.response_at(raw, ["paths", path, method.lower(), "responses", status])

    def component(self, name: str) -> tuple[dict, str]:
        """A response component (an answer no operation lists: 404, 405) and its schema's pointer."""
        return self.response_at(self.doc["components"]["responses"][name], ["components", "responses", name])

    def response_at(self, raw: dict, where: list[str]) -> tuple[dict, str]:
        response, ref = self.resolve(raw)
        base = ref.removeprefix("#/").split("/") if ref else where
        return response, pointer(*base, "content", "application/json", "schema")

    def answer_response(self, method: str, path: str, status: int) -> tuple[dict, str]:
        """What an answer is checked against: its operation's response, or for
        a 404 or 405 the component, only where no operation could answer."""
        paths = self.doc["paths"]
        if status == 404:
            if path in paths:
                raise KeyError(f"{method} {path}: a 404 for a path the document lists")
            return self.component("NotFound")
        if status == 405:
            if path not in paths:
                raise KeyError(f"{method} {path}: a 405 for a path the document does not list (404 expected)")
            if method.upper() in self.operations(path):
                raise KeyError(f"{method} {path}: a 405 for a documented operation")
            return self.component("MethodNotAllowed")
        return self.response(method, path, status)

    def check_answer(self, answer: dict) -> list[str]:
        method, path, status = answer["method"], answer["path"], answer["status"]
        try:
            response, schema = self.answer_response(method, path, status)
        except KeyError as e:
            return [f"{method} {path} -> {status}: not in the document ({e})"]
        body = answer["body"]
        if isinstance(body, str):
            body = json.loads(body)
        problems = [f"body: {e.message} at {list(e.absolute_path)}" for e in self.validator(schema).iter_errors(body)]
        if path == "/openapi.json" and status == 200 and body != self.doc:
            problems.append("the served document differs from openapi.yaml")
        headers = {k.lower(): v for k, v in answer.get("headers", {}).items()}
        if headers.get("content-type") != "application/json":
            problems.append(f"content-type is {headers.get('content-type')!r}")
        if status == 405:
            allowed = [m.strip() for m in headers.get("allow", "").split(",")]
            if sorted(allowed) != sorted(self.operations(path)):
                problems.append(f"Allow is {headers.get('allow')!r}, not the path's operations {self.operations(path)}")
        for name, header in response.get("headers", {}).items():
            header, _ = self.resolve(header)
            value = headers.get(name.lower())
            if value is None:
                if header.get("required"):
                    problems.append(f"header {name} is missing")
                continue
            problems += [f"header {name}: {e.message}" for e in Draft202012Validator(header["schema"]).iter_errors(value)]
        return [f"{method} {path} -> {status}: {p}" for p in problems]


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operation_problems(contract: Contract):
    """Operations that are no operations: without a 2xx answer (only 404s or 405s)."""
    for key, item in contract.doc["paths"].items():
        for method in contract.operations(key):
            statuses = contract.operation(method, key)["responses"]
            if not any(str(s).startswith("2") for s in statuses):
                yield f"{method} {key} documents no 2xx answer ({', '.join(map(str, statuses))}): not an operation"


def examples(contract: Contract):
    """Every (label, schema pointer, example value) in the document."""
    for key in contract.doc["paths"]:
        for method in contract.operations(key):
            op = contract.operation(method, key)
            body = op.get("requestBody")
            if body:
                for name, ex in body["content"]["application/json"].get("examples", {}).items():
                    yield (
                        f"{method} {key} request {name}",
                        pointer("paths", key, method.lower(), "requestBody", "content", "application/json", "schema"),
                        ex["value"],
                    )
            for status, raw in op["responses"].items():
                if "$ref" in raw:
                    continue  # a component: below
                response, schema = contract.response(method, key, status)
                for name, ex in response.get("content", {}).get("application/json", {}).get("examples", {}).items():
                    yield f"{method} {key} {status} {name}", schema, ex["value"]
    for component in contract.doc["components"].get("responses", {}):
        response, schema = contract.component(component)
        for name, ex in response.get("content", {}).get("application/json", {}).get("examples", {}).items():
            yield f"components/responses/{component} {name}", schema, ex["value"]


def forbidden_answers(contract: Contract):
    """Answers the contract rules out, each of which the schemas must reject."""
    _, ok = contract.response("POST", "/", 200)
    _, bad = contract.response("POST", "/", 400)
    _, not_found = contract.component("NotFound")
    _, not_allowed = contract.component("MethodNotAllowed")
    _, meta = contract.response("GET", "/", 200)
    good = copy.deepcopy(
        contract.doc["paths"]["/"]["post"]["responses"]["200"]["content"]["application/json"]["examples"]["explained"]["value"]
    )
    metadata = contract.doc["paths"]["/"]["get"]["responses"]["200"]["content"]["application/json"]["examples"]["metadata"]["value"]

    def edit(value, fn):
        value = copy.deepcopy(value)
        fn(value)
        return value

    yield "an extra top-level field", ok, edit(good, lambda v: v.update(score=0.9))
    yield "prediction as a string", ok, edit(good, lambda v: v.update(prediction="1"))
    yield "a probability above 1", ok, edit(good, lambda v: v.update(probability=1.5))
    yield "no warnings", ok, edit(good, lambda v: v.pop("warnings"))
    yield "no request id", ok, edit(good, lambda v: v.pop("requestId"))
    yield "an empty request id", ok, edit(good, lambda v: v.update(requestId=""))
    yield "an id that is an object", ok, edit(good, lambda v: v.update(id={"a": 1}))
    last = list(good["explanation"]["contributions"])[-1]
    yield "a contribution missing", ok, edit(good, lambda v: v["explanation"]["contributions"].pop(last))
    yield "an unknown contribution", ok, edit(good, lambda v: v["explanation"]["contributions"].update(notAFeature=1.0))
    yield "a unit other than log-odds", ok, edit(good, lambda v: v["explanation"].update(unit="probability"))
    yield "no base value", ok, edit(good, lambda v: v["explanation"].pop("baseValue"))
    yield "a 400 answer with 200's schema", ok, {"status": "400", "reason": "x", "prediction": ""}
    yield "a 400 with a prediction", bad, {"status": "400", "reason": "x", "prediction": 1, "requestId": "r"}
    yield "a 400 saying 404", bad, {"status": "404", "reason": "x", "prediction": "", "requestId": "r"}
    yield "an error code the contract lacks", bad, {
        "status": "400",
        "reason": "x",
        "prediction": "",
        "requestId": "r",
        "errors": [{"field": last, "code": "bad", "message": "m"}],
    }
    yield "an empty errors list", bad, {"status": "400", "reason": "x", "prediction": "", "requestId": "r", "errors": []}
    yield "a 404 with errors", not_found, {
        "status": "404",
        "reason": "x",
        "prediction": "",
        "requestId": "r",
        "errors": [{"field": "id", "code": "invalid_id", "message": "m"}],
    }
    yield "a 405 with a model version", not_allowed, {
        "status": "405",
        "reason": "x",
        "prediction": "",
        "requestId": "r",
        "modelVersion": "breast-cancer-gbc-0123456789ab",
    }
    yield "a 400 without a request id", bad, {"status": "400", "reason": "x", "prediction": ""}
    yield "metadata without a request id", meta, edit(metadata, lambda v: v.pop("requestId"))
    yield "metadata without baseValue", meta, edit(metadata, lambda v: v["model"].pop("baseValue"))
    yield "metadata with a feature fewer", meta, edit(metadata, lambda v: v["model"]["features"].pop())
    yield "metadata with a feature more", meta, edit(metadata, lambda v: v["model"]["features"].append(v["model"]["features"][0]))
    yield "a feature name the model lacks", meta, edit(metadata, lambda v: v["model"]["features"][0].update(name="notAFeature"))
    yield "a null id", ok, edit(good, lambda v: v.update(id=None))
    yield "a 65-bit integer id", ok, edit(good, lambda v: v.update(id=2**64))
    yield "metadata with a short sha256", meta, edit(metadata, lambda v: v["model"].update(sha256="999de189"))
    classes = metadata["model"]["classes"]
    yield "classes swapped", meta, edit(metadata, lambda v: v["model"].update(classes=[[0, classes[1][1]], [1, classes[0][1]]]))
    yield "a third class", meta, edit(metadata, lambda v: v["model"]["classes"].append([2, "other"]))
    yield "a class pair with a third item", meta, edit(metadata, lambda v: v["model"]["classes"][1].append("x"))
    yield "a class label as a string", meta, edit(metadata, lambda v: v["model"]["classes"][0].__setitem__(0, "0"))


def kind(answer: dict) -> str:
    """What REQUIRED counts: method, path (other paths as /{path}), status; explained 200s apart."""
    path = answer["path"] if answer["path"] in ("/", "/openapi.json") else "/{path}"
    label = f"{answer['method'] if answer['status'] not in (404, 405) else '*'} {path} {answer['status']}"
    body = answer["body"]
    if answer["status"] == 200 and path == "/" and answer["method"] == "POST":
        parsed = json.loads(body) if isinstance(body, str) else body
        if "explanation" in parsed:
            label += " explained"
        if "id" in parsed:
            label += " with id"
    return label


# The least a full test run records, per kind of answer.
REQUIRED = {
    "POST / 200": 5,
    "POST / 200 explained": 20,
    "POST / 200 with id": 1,
    "POST / 400": 10,
    "POST / 413": 2,
    "GET / 200": 2,
    "GET /openapi.json 200": 2,
    "* / 405": 2,
    "* /openapi.json 405": 1,
    "* /{path} 404": 2,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doc", default=str(ROOT / "openapi.yaml"), help="the document (YAML or JSON)")
    parser.add_argument("--same-as", help="a JSON file the document must equal (`scorer openapi --json`)")
    parser.add_argument("--answers", help="JSON lines of recorded answers to check against the document")
    parser.add_argument("--require-all", action="store_true", help="fail unless --answers holds every kind in REQUIRED")
    parser.add_argument("--write-json", help="also write the document as JSON (what GET /openapi.json serves)")
    args = parser.parse_args()

    doc = load(Path(args.doc))
    validate_spec(doc)
    print(f"ok: {args.doc} is a valid OpenAPI {doc['openapi']} document")
    contract = Contract(doc)
    failures = list(operation_problems(contract))
    if args.same_as and json.loads(Path(args.same_as).read_text()) != doc:
        failures.append(f"{args.doc} differs from {args.same_as} (PyYAML and serde read the document differently)")

    checks = 0
    count = 0
    for label, schema, value in examples(contract):
        count += 1
        failures += [f"example {label}: {e.message}" for e in contract.validator(schema).iter_errors(value)]
    print(f"ok: {count} examples checked against their schemas")
    checks += count

    count = 0
    for label, schema, value in forbidden_answers(contract):
        count += 1
        if contract.validator(schema).is_valid(value):
            failures.append(f"the schema at {schema} accepts {label}")
    print(f"ok: {count} answers the contract forbids checked")
    checks += count

    if args.answers:
        lines = [line for line in Path(args.answers).read_text().splitlines() if line.strip()]
        counts: dict[str, int] = {}
        for line in lines:
            answer = json.loads(line)
            failures += contract.check_answer(answer)
            counts[kind(answer)] = counts.get(kind(answer), 0) + 1
        print(f"checked {len(lines)} recorded answers: " + ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())))
        checks += len(lines)
        if args.require_all:
            for k, least in REQUIRED.items():
                if counts.get(k, 0) < least:
                    failures.append(f"recorded answers: {counts.get(k, 0)} of kind {k!r}, at least {least} expected")

    if args.write_json:
        Path(args.write_json).write_text(json.dumps(doc, indent=2) + "\n")

    for f in failures:
        print("FAIL:", f)
    print(f"openapi: {checks + 1 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
