"""Every rendered object against the Kubernetes schemas (strict) and the operators' CRD schemas (deploy/crds)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from kubernetes_validate.utils import schema_contents

from tests.deploy.render import K8S, OVERLAYS, ROOT, Manifest, kustomize, render

KUBERNETES_VERSIONS = ("1.30", "1.32")
CRDS = ROOT / "deploy" / "crds"


@functools.cache
def crd_schemas() -> dict[str, dict[str, Any]]:
    """``group/version/Kind`` -> the schema subset kept in deploy/crds (each file names its operator version)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        assert document["version"], f"{path.name} must name the operator version its schemas come from"
        found.update(document["kinds"])
    return found


@functools.cache
def kubernetes_definitions(version: str) -> referencing.Registry[Any]:
    definitions = schema_contents(f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json", version)
    resource: referencing.Resource[Any] = referencing.Resource.from_contents(definitions)
    return resource @ referencing.Registry()


def is_custom(doc: Manifest) -> bool:
    return f"{doc['apiVersion']}/{doc['kind']}" in crd_schemas()


def validate_custom(doc: Manifest, version: str) -> None:
    # Based where kubernetes-validate's definitions live, so "/api/_definitions.json#..." resolves.
    schema = {
        "$id": f"https://kubernetes.io/api/crds/{doc['kind'].lower()}",
        **crd_schemas()[f"{doc['apiVersion']}/{doc['kind']}"],
    }
    validator = jsonschema.Draft202012Validator(schema, registry=kubernetes_definitions(version))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def validate(doc: Manifest, version: str) -> None:
    if is_custom(doc):
        validate_custom(doc, version)
    else:
        kubernetes_validate.validate(doc, version, strict=True)


def extra_documents() -> list[Manifest]:
    """What the overlays do not render but an SRE applies: the example store, the ingress-nginx component."""
    docs = [d for d in yaml.safe_load_all((K8S / "examples" / "secret-store-vault.yaml").read_text()) if d]
    return docs + kustomize(K8S / "components" / "ingress-nginx")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_in_strict_mode(overlay: str, version: str) -> None:
    failures = []
    for doc in render(overlay):
        try:
            validate(doc, version)
        except (AssertionError, jsonschema.ValidationError, kubernetes_validate.utils.SchemaNotFoundError) as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {getattr(exc, 'message', exc)}")
    assert failures == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_example_secret_store_and_the_ingress_component_are_valid(version: str) -> None:
    for doc in extra_documents():
        validate(doc, version)


def test_every_custom_resource_kind_has_a_kept_schema() -> None:
    kinds = {f"{d['apiVersion']}/{d['kind']}" for overlay in OVERLAYS for d in render(overlay)}
    builtin = {
        k for k in kinds if k.split("/")[0] in ("v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io")
    }
    assert kinds - builtin <= set(crd_schemas())
    assert {
        "postgresql.cnpg.io/v1/Cluster",
        "external-secrets.io/v1/ExternalSecret",
        "monitoring.coreos.com/v1/PodMonitor",
        "opentelemetry.io/v1beta1/OpenTelemetryCollector",
        "gateway.networking.k8s.io/v1/HTTPRoute",
    } <= kinds


def test_the_kept_schemas_are_strict() -> None:
    """A misspelt field fails, as kubectl apply --validate=strict would refuse it."""
    (cluster,) = (d for d in render("production") if d["kind"] == "Cluster")
    misspelt = {**cluster, "spec": {**cluster["spec"], "instance": 3}}
    with pytest.raises(AssertionError, match="instance"):
        validate_custom(misspelt, "1.32")
    (route,) = (d for d in render("production") if d["kind"] == "HTTPRoute")
    rules = [{**route["spec"]["rules"][0], "matches": [{"path": {"type": "Prefix", "value": "/v1"}}]}]
    with pytest.raises(AssertionError, match="Prefix"):
        validate_custom({**route, "spec": {**route["spec"], "rules": rules}}, "1.32")


def test_kept_schema_files_name_their_source() -> None:
    for path in Path(CRDS).glob("*.yaml"):
        head = path.read_text().splitlines()[0]
        assert head.startswith("# Subset of the"), path.name
