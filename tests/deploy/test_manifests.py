"""What an SRE relies on in the rendered overlays: hardened pods, real probes, secrets only by
reference, digests in production, roles, backups, ordering and the production settings."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from gateway.config import GatewaySettings
from kit.settings import ServiceSettings
from tests.deploy.render import (
    K8S,
    OVERLAYS,
    PROCESSES,
    ROOT,
    SERVICES,
    config,
    objects,
    one,
    pod_templates,
    render,
)
from tests.support.suite import SERVICE_BUILDERS

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL|CREDENTIAL)(?!S_DIR)", re.IGNORECASE)


def containers(overlay: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, container)
        for name, template in pod_templates(overlay).items()
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_unprivileged_with_a_read_only_root(overlay: str) -> None:
    for name, template in pod_templates(overlay).items():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
    for name, container in containers(overlay):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
    (collector,) = objects(overlay, "OpenTelemetryCollector").values()
    assert collector["spec"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert collector["spec"]["podSecurityContext"]["runAsNonRoot"] is True
    assert {"cpu", "memory"} <= set(collector["spec"]["resources"]["limits"])
    assert {"cpu", "memory"} <= set(one(overlay, "Cluster", "suite-db")["spec"]["resources"]["limits"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_the_restricted_pod_security_profile(overlay: str) -> None:
    (namespace,) = objects(overlay, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in render(overlay):
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace["metadata"]["name"], doc["metadata"]["name"]


def app_paths(process: str) -> set[str]:
    """The routes the process's app really serves (built as production would, without starting it)."""
    if process == "gateway":
        from gateway.app import create

        app = create(GatewaySettings(environment="test"))
    else:
        settings_cls, factory = SERVICE_BUILDERS[process]
        app = factory(settings_cls(environment="test", database_url=SecretStr("postgresql+asyncpg://x@127.0.0.1:9/x")))
    paths = {getattr(route, "path", "") for route in app.routes}
    return paths | set(app.openapi()["paths"])  # routers included lazily show in the schema


@pytest.mark.parametrize("process", PROCESSES)
def test_probes_and_scrapes_hit_endpoints_the_app_serves(process: str) -> None:
    served = app_paths(process)
    for overlay in OVERLAYS:
        (container,) = pod_templates(overlay)[process]["spec"]["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["path"] in served, (process, probe)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] >= 5
        grace = pod_templates(overlay)[process]["spec"]["terminationGracePeriodSeconds"]
        assert grace > container["lifecycle"]["preStop"]["sleep"]["seconds"] + 20  # + uvicorn's graceful shutdown
        target = "gateway.app:create" if process == "gateway" else f"services.{process}.app:create"
        assert target in container["command"]
    monitor = one("production", "PodMonitor", "bank-suite")["spec"]
    assert {e["path"] for e in monitor["podMetricsEndpoints"]} <= served


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_autoscaling_and_budgets_agree_and_never_block_a_drain(overlay: str) -> None:
    for process in PROCESSES:
        deployment = one(overlay, "Deployment", process)["spec"]
        autoscaler = one(overlay, "HorizontalPodAutoscaler", process)["spec"]
        budget = one(overlay, "PodDisruptionBudget", process)["spec"]
        assert deployment["replicas"] == autoscaler["minReplicas"], process
        assert budget.get("maxUnavailable", 0) >= 1 or budget["minAvailable"] < autoscaler["minReplicas"], process
        keys = {c["topologyKey"] for c in deployment["template"]["spec"]["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, process
    if overlay == "production":
        assert all(one(overlay, "HorizontalPodAutoscaler", p)["spec"]["minReplicas"] >= 2 for p in PROCESSES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_only_referenced_never_written_into_the_manifests(overlay: str) -> None:
    assert objects(overlay, "Secret") == {}
    assert not [k for k in config(overlay) if SECRET_NAME.search(k) and k != "PGSSLROOTCERT"]
    for name, container in containers(overlay):
        for variable in container.get("env", []):
            if SECRET_NAME.search(variable["name"]):
                assert "valueFrom" in variable or variable["name"] == "DATABASE_URL", (name, variable["name"])
                assert "@" not in variable.get("value", ""), (name, variable["name"])  # no credentials in a URL
        for source in container.get("envFrom", []):
            assert "secretRef" not in source, name  # secrets are files, not variables
    for external in objects(overlay, "ExternalSecret").values():
        template = external["spec"]["target"]["template"]["data"]
        for key, value in template.items():
            if SECRET_NAME.search(key) or key == "password":
                assert "{{" in value, (external["metadata"]["name"], key)  # filled from the store


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_mounts_its_secret_as_files(process: str) -> None:
    for overlay in OVERLAYS:
        pod = pod_templates(overlay)[process]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == f"{process}-secrets"
        (container,) = pod["containers"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["secrets"]["mountPath"] == config(overlay)["SUITE_SECRETS_DIR"]
        assert mounts["secrets"]["readOnly"] is True
        external = one(overlay, "ExternalSecret", f"{process}-secrets")["spec"]
        assert external["secretStoreRef"] == {"name": "bank-suite-secrets", "kind": "SecretStore"}


def deployed_keys(overlay: str, process: str) -> dict[str, str]:
    data: dict[str, str] = one(overlay, "ExternalSecret", f"{process}-secrets")["spec"]["target"]["template"]["data"]
    return data


@pytest.mark.parametrize("process", PROCESSES)
def test_the_settings_start_in_production_from_the_configmap_and_the_secret_keys(
    process: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Every setting the overlay gives parses, and the keys of the process's secret are all it needs."""
    for overlay in OVERLAYS:
        for key, value in config(overlay).items():
            monkeypatch.setenv(key, value)
        secrets = tmp_path / overlay / process
        secrets.mkdir(parents=True)
        for key, template in deployed_keys(overlay, process).items():
            value = re.sub(r"\{\{[^}]*\}\}", "Xk3J9-strong-random-value-0123456789abcdef", template)
            (secrets / key).write_text(value)
        monkeypatch.setenv("SUITE_SECRETS_DIR", str(secrets))
        settings_cls: type[Any] = GatewaySettings if process == "gateway" else SERVICE_BUILDERS[process][0]
        settings = settings_cls()
        assert settings.environment.value == ("production" if overlay == "production" else "staging")
        if isinstance(settings, ServiceSettings):
            url = settings.database_url.get_secret_value()
            assert url.startswith(f"postgresql+asyncpg://suite_{process}:")
            assert url.endswith("@suite-db-rw:5432/suite?ssl=verify-full")
        if isinstance(settings, GatewaySettings):
            assert settings.trusted_proxies
            assert settings.rate_limit_storage.startswith("async+redis://")


def test_identity_needs_no_development_secret_in_production() -> None:
    assert "IDENTITY_DEV_SERVICE_CLIENT_SECRET" not in deployed_keys("production", "identity")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_production_settings_are_set(overlay: str) -> None:
    settings = config(overlay)
    assert settings["GATEWAY_BEHIND_PROXY"] == "true"
    assert json.loads(settings["GATEWAY_TRUSTED_PROXIES"])
    assert settings["IDENTITY_WEBAUTHN_RP_ID"] not in ("", "localhost")
    origins = json.loads(settings["IDENTITY_WEBAUTHN_ORIGINS"])
    assert origins
    assert all(o.startswith("https://") and o.endswith(settings["IDENTITY_WEBAUTHN_RP_ID"]) for o in origins)
    assert settings["IDENTITY_NOTIFICATION_WEBHOOK_URL"].startswith("https://")
    assert one(overlay, "NetworkPolicy", "identity-notification-webhook")["spec"]["egress"][0]["ports"] == [
        {"port": 443, "protocol": "TCP"}
    ]
    exporters = next(iter(objects(overlay, "OpenTelemetryCollector").values()))["spec"]["config"]["exporters"]
    assert "debug" not in exporters
    assert exporters["otlphttp"]["endpoint"].startswith("https://")


def test_images_are_pinned_by_digest_in_production() -> None:
    images = [container["image"] for _, container in containers("production")]
    (collector,) = objects("production", "OpenTelemetryCollector").values()
    images.append(collector["spec"]["image"])
    assert len(images) > 1
    assert all(DIGEST.search(image) for image in images), images
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert DIGEST.search(default), default
    bases = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert bases == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], bases
    assert "--no-default-groups" in dockerfile  # pgserver (the embedded PostgreSQL) stays out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_managed_role_with_its_own_password_secret(overlay: str) -> None:
    cluster = one(overlay, "Cluster", "suite-db")["spec"]
    roles = {role["name"]: role for role in cluster["managed"]["roles"]}
    assert set(roles) == {f"suite_{s}" for s in SERVICES}
    for service in SERVICES:
        role = roles[f"suite_{service}"]
        assert role["login"] is True
        assert not role.get("superuser")
        assert not role.get("createrole")
        secret = one(overlay, "ExternalSecret", role["passwordSecret"]["name"])["spec"]["target"]["template"]
        assert secret["type"] == "kubernetes.io/basic-auth"
        assert secret["data"]["username"] == f"suite_{service}"
        assert secret["metadata"]["labels"]["cnpg.io/reload"] == "true"
        assert f"suite_{service}:" in deployed_keys(overlay, service)[f"{service.upper()}_DATABASE_URL"]
        assert "sslmode=verify-full" in deployed_keys(overlay, service)[f"{service.upper()}_DATABASE_URL"]
    assert "barmanObjectStore" not in cluster.get("backup", {})
    assert "monitoring" not in cluster  # enablePodMonitor is deprecated: a PodMonitor instead
    assert cluster["plugins"] == [
        {
            "name": "barman-cloud.cloudnative-pg.io",
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "suite-db-backups"},
        }
    ]
    backup = one(overlay, "ScheduledBackup", "suite-db-daily")["spec"]
    assert backup["method"] == "plugin"


def test_staging_backs_up_to_its_own_path_with_its_own_credentials() -> None:
    production, staging = (one(o, "ObjectStore", "suite-db-backups")["spec"]["configuration"] for o in OVERLAYS)
    assert staging["destinationPath"] != production["destinationPath"]
    assert not staging["destinationPath"].startswith(production["destinationPath"].rsplit("/", 2)[0] + "/production")
    keys = [
        {d["remoteRef"]["key"] for d in one(o, "ExternalSecret", "suite-db-backup")["spec"]["data"]} for o in OVERLAYS
    ]
    assert keys[0].isdisjoint(keys[1])
    assert production["wal"]["encryption"] == "AES256"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_is_bounded_replaceable_and_ordered(overlay: str) -> None:
    job = one(overlay, "Job", "suite-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert int(annotations["argocd.argoproj.io/sync-wave"]) < 0  # before the Deployments (wave 0)
    assert job["spec"]["activeDeadlineSeconds"] <= 3600
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "ops.migrate"]
    assert "--managed-roles" in container["command"]
    assert "--wait-seconds" in container["command"]
    env = {v["name"]: v for v in container["env"]}
    assert env["DATABASE_URL"]["value"].endswith("sslmode=verify-full")
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "suite-db-app"
    for name in ("Deployment", "StatefulSet"):
        for doc in objects(overlay, name).values():
            assert "argocd.argoproj.io/hook" not in doc["metadata"].get("annotations", {})


def test_the_bootstrap_job_is_applied_once_outside_the_overlay() -> None:
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"]
    assert not any("bootstrap" in r for r in base)
    for overlay in OVERLAYS:
        job = one(overlay, "Job", "suite-bootstrap")
        assert "argocd.argoproj.io/hook" not in job["metadata"].get("annotations", {})
        script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        assert "create-admin" in script
        assert "bootstrap-admin" in script
        assert all(f"register {p}" in script for p in PROCESSES)
        assert job["spec"]["activeDeadlineSeconds"]
        assert job["spec"]["ttlSecondsAfterFinished"]


def test_the_edge_routes_only_the_api() -> None:
    (route,) = objects("production", "HTTPRoute").values()
    assert [m["path"] for rule in route["spec"]["rules"] for m in rule["matches"]] == [
        {"type": "PathPrefix", "value": "/v1"}
    ]
    assert objects("production", "Ingress") == {}  # ingress-nginx is retired: only as an optional component
    ingress = yaml.safe_load((K8S / "components" / "ingress-nginx" / "ingress.yaml").read_text())
    assert not any("ssl-protocols" in a for a in ingress["metadata"]["annotations"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_is_reachable_by_the_gateway_only_and_keeps_no_data(overlay: str) -> None:
    (container,) = pod_templates(overlay)["redis"]["spec"]["containers"]
    assert container["args"][container["args"].index("--save") + 1] == ""
    policy = one(overlay, "NetworkPolicy", "redis")["spec"]
    assert policy["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"suite.bank/role": "gateway"}}}],
            "ports": [{"port": 6379, "protocol": "TCP"}],
        }
    ]


def test_kubernetes_validation_is_strict() -> None:
    import kubernetes_validate

    misspelt = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x"},
        "automountServiceAccountTokn": False,
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, "1.32", strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_argo_cd_creates_settings_secrets_policies_and_the_database_before_migrating(overlay: str) -> None:
    def wave(doc: dict[str, Any]) -> int:
        return int(doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))

    migrate = wave(one(overlay, "Job", "suite-migrate"))
    for kind in ("ConfigMap", "NetworkPolicy", "ExternalSecret", "Cluster", "ObjectStore"):
        for name, doc in objects(overlay, kind).items():
            assert wave(doc) < migrate, (kind, name)
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "HTTPRoute"):
        assert all(wave(doc) > migrate for doc in objects(overlay, kind).values()), kind


def test_the_deploy_docs_list_every_required_key_and_remote_property() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for overlay in OVERLAYS:
        for process in PROCESSES:
            for key in deployed_keys(overlay, process):
                assert f"`{key}`" in docs, key
        for external in objects(overlay, "ExternalSecret").values():
            for item in external["spec"]["data"]:
                assert f"`{item['remoteRef']['key']}`" in docs, item["remoteRef"]["key"]
                assert f"`{item['remoteRef']['property']}`" in docs, item["remoteRef"]["property"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_denies_by_default(overlay: str) -> None:
    """A pod added later, that no policy names yet, can neither be reached nor reach anything."""
    deny = one(overlay, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
