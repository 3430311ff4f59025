"""What SREs rely on in deploy/k8s/base: probes, limits, non-root, budgets, default deny."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

BASE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"
PROCESSES = ("gateway", "identity", "permissions", "vault", "risk", "incidents")


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(BASE.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("name", PROCESSES)
def test_each_process_is_probed_limited_and_unprivileged(name: str) -> None:
    deployment = of_kind("Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    target = "gateway.app:create" if name == "gateway" else f"services.{name}.app:create"
    assert target in container["command"]


@pytest.mark.parametrize("name", PROCESSES)
def test_each_process_scales_and_survives_disruption(name: str) -> None:
    assert of_kind("HorizontalPodAutoscaler")[name]["spec"]["minReplicas"] >= 2
    assert of_kind("PodDisruptionBudget")[name]["spec"]["minAvailable"] >= 1


def test_network_is_default_deny() -> None:
    deny = of_kind("NetworkPolicy")["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny


def test_database_is_run_by_the_operator_with_wal_archiving() -> None:
    cluster = of_kind("Cluster")["suite-db"]["spec"]
    assert cluster["instances"] >= 3
    assert cluster["backup"]["barmanObjectStore"]["wal"]["encryption"] == "AES256"
    assert cluster["postgresql"]["parameters"]["archive_timeout"] == "60s"
