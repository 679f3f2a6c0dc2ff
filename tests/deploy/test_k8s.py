"""deploy/k8s, beyond its schemas: our containers' settings are settings and parse, with
the secret files where the pod mounts them; the services select the pods they serve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from deploy.composefile import ROOT, load_yaml
from whn.settings import _FILE_SECRETS, Settings

K8S = ROOT / "deploy" / "k8s"


def _manifests() -> dict[str, dict[str, Any]]:
    kustomization = load_yaml((K8S / "kustomization.yaml").read_text())
    return {name: load_yaml((K8S / name).read_text()) for name in kustomization["resources"]}


MANIFESTS = _manifests()
CONFIG = next(m for m in MANIFESTS.values() if m["kind"] == "ConfigMap")["data"]
DEPLOYMENTS = {m["metadata"]["name"]: m for m in MANIFESTS.values() if m["kind"] == "Deployment"}


def _container_env(workload: dict[str, Any]) -> dict[str, str]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    if container.get("envFrom"):
        env |= CONFIG
    for item in container.get("env") or []:
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        env[item["name"]] = CONFIG[ref["key"]] if ref else item["value"]
    return env


@pytest.mark.parametrize("name", ["whn-worker", "whn-codec-server", "whn-web", "whn-migrate"])
def test_our_settings_parse_with_the_files_the_pod_mounts(name, tmp_path, monkeypatch):
    workload = DEPLOYMENTS.get(name) or next(
        m for m in MANIFESTS.values() if m["metadata"]["name"] == name
    )
    env = _container_env(workload)
    fields = {f"WHN_{f.upper()}" for f in Settings.model_fields}
    fields |= {f"WHN_{f.upper()}_FILE" for f in _FILE_SECRETS}
    unknown = {k for k in env if k.startswith("WHN_")} - fields
    assert not unknown, f"{name}: no setting reads {sorted(unknown)}"
    for key in [k for k in os.environ if k.startswith("WHN_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if value.startswith("/run/secrets/"):
            local = tmp_path / Path(value).name
            local.write_text("k1:" + "A" * 43 + "=\n" if "codec_keys" in value else "secret\n")
            value = str(local)
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.codec_required or name == "whn-migrate"
    if name == "whn-codec-server":
        assert settings.codec_oidc_issuer and settings.codec_oidc_audience


def test_every_service_selects_pods_of_a_deployment_on_a_named_port():
    for manifest in MANIFESTS.values():
        if manifest["kind"] != "Service":
            continue
        selector = manifest["spec"]["selector"]
        [target] = [
            d
            for d in DEPLOYMENTS.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        [container] = target["spec"]["template"]["spec"]["containers"]
        names = {p["name"] for p in container["ports"]}
        for port in manifest["spec"]["ports"]:
            assert port["targetPort"] in names, manifest["metadata"]["name"]


def test_every_deployment_is_selected_by_its_own_labels_and_a_disruption_budget():
    budgets = [m for m in MANIFESTS.values() if m["kind"] == "PodDisruptionBudget"]
    for name, deployment in DEPLOYMENTS.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets
        ), f"{name} has no PodDisruptionBudget"
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", ["whn-worker", "whn-web"])
def test_letters_link_to_the_ingress_host_over_https(name):
    """The worker's letters link to /track at WHN_PUBLIC_URL; whn-web's cookies are Secure
    by it: the ingress's https host, never the default http://localhost:8000."""
    ingress = next(m for m in MANIFESTS.values() if m["kind"] == "Ingress")
    [host] = ingress["spec"]["tls"][0]["hosts"]
    assert _container_env(DEPLOYMENTS[name]).get("WHN_PUBLIC_URL") == f"https://{host}"
