"""Render the overlays with kubectl's kustomize (kubectl kustomize, kustomize v5) and index the objects."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("production", "staging")
PROCESSES = ("gateway", "identity", "permissions", "vault", "risk", "incidents")
SERVICES = PROCESSES[1:]
NAMESPACES = {"production": "bank-suite", "staging": "bank-suite-staging"}

Manifest = dict[str, Any]


def kustomize(path: Path) -> list[Manifest]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is needed to render the manifests (kubectl kustomize)")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@functools.cache
def render(overlay: str) -> tuple[Manifest, ...]:
    """The overlay's objects (the one-time bootstrap kustomization included)."""
    return tuple(kustomize(K8S / "overlays" / overlay) + kustomize(K8S / "overlays" / overlay / "bootstrap"))


def objects(overlay: str, kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in render(overlay) if doc["kind"] == kind}


def one(overlay: str, kind: str, name: str) -> Manifest:
    return objects(overlay, kind)[name]


def config(overlay: str) -> dict[str, str]:
    (config_map,) = (m for n, m in objects(overlay, "ConfigMap").items() if n.startswith("suite-config"))
    data: dict[str, str] = config_map["data"]
    return data


def pod_templates(overlay: str) -> dict[str, Manifest]:
    """Pod specs of every workload (Deployments and Jobs), by workload name."""
    found: dict[str, Manifest] = {}
    for doc in render(overlay):
        if doc["kind"] in ("Deployment", "Job"):
            found[doc["metadata"]["name"]] = doc["spec"]["template"]
    return found
