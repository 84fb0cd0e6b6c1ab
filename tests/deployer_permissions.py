"""The deployer's permissions table of docs/deploying.md covers the stack.

    python tests/deployer_permissions.py TEMPLATE DOC

Expands TEMPLATE with the SAM translator (samtranslator, the library
cfn-lint and `sam validate` use; tests/template_lint.sh runs this with
cfn-lint's python, which has it) into the CloudFormation resources it
deploys, and checks that DOC's section "The deployer's permissions" names
actions (`prefix:Action`) of every service those resources belong to, and of
CloudFormation and S3 (the change sets, SAM's artifact bucket), which every
deploy uses. Prints one line per problem and exits 1 if there is any.
The code locations are placeholders: the transform needs S3 URIs, not files.
"""

import json
import os
import re
import sys

from cfnlint.decode import decode_str
from samtranslator.translator.transform import transform

# An IAM action prefix that is not the lowercase service name of the resource type.
PREFIX = {"StepFunctions": "states"}
ALWAYS = {"cloudformation", "s3"}


class NoManagedPolicies:
    def load(self):
        return {}


def expanded_services(template_path: str) -> dict[str, list[str]]:
    """IAM prefix -> the expanded template's resource types of that service."""
    template, problems = decode_str(open(template_path).read())
    if problems:
        raise SystemExit(f"{template_path}: {problems}")
    template = json.loads(json.dumps(template, default=str))
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://placeholder/key"
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    out = transform(template, {"AWS::Region": os.environ["AWS_DEFAULT_REGION"]}, NoManagedPolicies())
    services: dict[str, list[str]] = {}
    for resource in out["Resources"].values():
        _, service, _ = resource["Type"].split("::", 2)
        services.setdefault(PREFIX.get(service, service.lower()), []).append(resource["Type"])
    return services


def documented_prefixes(doc_path: str) -> set[str]:
    text = open(doc_path).read()
    start = text.find("The deployer's permissions")
    if start < 0:
        return set()
    section = text[start:]
    end = re.search(r"\n\*\*\d+\. ", section)
    section = section[: end.start()] if end else section
    return set(re.findall(r"`([a-z0-9-]+):[A-Z][A-Za-z]*`", section))


def main() -> int:
    template_path, doc_path = sys.argv[1:3]
    services = expanded_services(template_path)
    documented = documented_prefixes(doc_path)
    problems = []
    if not documented:
        problems.append(f"{doc_path}: no section \"The deployer's permissions\" naming `prefix:Action`s")
    for prefix in sorted(ALWAYS | set(services)):
        if prefix not in documented:
            types = ", ".join(sorted(set(services.get(prefix, ["every deploy"]))))
            problems.append(f"{doc_path}: the deployer's permissions name no {prefix}: action ({types})")
    for line in problems:
        print(line)
    if not problems:
        print(f"deployer permissions: {', '.join(sorted(ALWAYS | set(services)))} documented")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
