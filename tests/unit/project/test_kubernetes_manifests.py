"""The Kubernetes manifests in deploy/kubernetes/ are valid for the API server (checked
offline against the schemas kubernetes-validate bundles, strictly: no unknown field), and
consistent with Tollgate: every container runs a real `tollgate` command, every setting is
one Tollgate documents, and every reference (config, secret, service, autoscaler) resolves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tollgate.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
#: A Kubernetes version the manifests must suit (the oldest we document).
KUBERNETES = "1.30.0"


def _documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _named(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _documents() if d["kind"] == kind}


def _pod_specs() -> list[dict[str, Any]]:
    return [
        d["spec"]["template"]["spec"] for d in _documents() if d["kind"] in ("Deployment", "Job")
    ]


def test_every_role_is_deployed() -> None:
    kinds = sorted(d["kind"] for d in _documents())
    assert kinds.count("Deployment") == 3
    assert "Job" in kinds
    assert "HorizontalPodAutoscaler" in kinds
    roles = sorted(tuple(c["args"][:1]) for spec in _pod_specs() for c in spec["containers"])
    assert roles == [("api",), ("db",), ("gateway",), ("worker",)]


@pytest.mark.parametrize(
    "document", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_each_document_is_valid_for_the_api_server(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_containers_run_tollgate_commands_as_non_root() -> None:
    parser = build_parser()
    for spec in _pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            parser.parse_args(container["args"])  # exits (fails the test) on a bad command


def test_settings_are_ones_tollgate_reads() -> None:
    readme = (ROOT / "README.md").read_text()
    config, secret = _named("ConfigMap")["tollgate"], _named("Secret")["tollgate"]
    for name in [*config["data"], *secret["stringData"]]:
        assert f"`{name}`" in readme, f"{name} is not a documented setting"


def test_references_resolve() -> None:
    configs, secrets = _named("ConfigMap"), _named("Secret")
    for spec in _pod_specs():
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configs
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
    deployments = _named("Deployment")
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    for service in _named("Service").values():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= pod.items() for pod in labels), service["metadata"]
    for autoscaler in _named("HorizontalPodAutoscaler").values():
        assert autoscaler["spec"]["scaleTargetRef"]["name"] in deployments
