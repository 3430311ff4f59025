"""The NetworkPolicies, evaluated over the rendered pods: the flows the suite needs pass, nothing else does."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.deploy.netpol import Endpoint, Network, matches_selector
from tests.deploy.render import NAMESPACES, OVERLAYS, SERVICES, objects, render

Flow = tuple[str, str, int, str]


def _ports(pod_spec: dict[str, Any]) -> dict[tuple[int, str], str]:
    return {
        (port["containerPort"], port.get("protocol", "TCP")): port.get("name", "")
        for container in pod_spec["containers"]
        for port in container.get("ports", [])
    }


def suite_pods(overlay: str) -> dict[str, Endpoint]:
    """One pod per workload of the namespace, as the cluster would run them, with pod addresses."""
    namespace = NAMESPACES[overlay]
    addresses = (f"10.244.1.{n}" for n in itertools.count(10))
    pods: dict[str, Endpoint] = {}
    for doc in render(overlay):
        if doc["kind"] in ("Deployment", "Job"):
            template = doc["spec"]["template"]
            pods[doc["metadata"]["name"]] = Endpoint(
                doc["metadata"]["name"],
                next(addresses),
                namespace,
                template["metadata"]["labels"],
                _ports(template["spec"]),
            )
    (cluster,) = objects(overlay, "Cluster")
    instance_ports = {(5432, "TCP"): "postgresql", (8000, "TCP"): "status", (9187, "TCP"): "metrics"}
    for role in ("primary", "replica"):  # the labels CloudNativePG puts on its instance pods
        labels = {"cnpg.io/cluster": cluster, "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": role}
        pods[f"db-{role}"] = Endpoint(f"db-{role}", next(addresses), namespace, labels, instance_ports)
    (collector,) = objects(overlay, "OpenTelemetryCollector")
    labels = {  # the labels the OpenTelemetry operator puts on the collector's pods
        "app.kubernetes.io/name": f"{collector}-collector",
        "app.kubernetes.io/component": "opentelemetry-collector",
        "app.kubernetes.io/managed-by": "opentelemetry-operator",
    }
    pods["collector"] = Endpoint(
        "collector", next(addresses), namespace, labels, {(4318, "TCP"): "otlp-http", (8888, "TCP"): "metrics"}
    )
    return pods


OUTSIDE = {
    "edge": Endpoint(
        "edge", "10.244.7.2", "gateway-system", {"app.kubernetes.io/name": "envoy"}, {(8443, "TCP"): "https"}
    ),
    "ingress-nginx": Endpoint(
        "ingress-nginx",
        "10.244.7.3",
        "ingress-nginx",
        {"app.kubernetes.io/name": "ingress-nginx"},
        {(443, "TCP"): "https"},
    ),
    "operator": Endpoint(
        "operator",
        "10.244.7.4",
        "cnpg-system",
        {"app.kubernetes.io/name": "cloudnative-pg"},
        {(9443, "TCP"): "webhook"},
    ),
    "prometheus": Endpoint(
        "prometheus", "10.244.7.5", "monitoring", {"app.kubernetes.io/name": "prometheus"}, {(9090, "TCP"): "web"}
    ),
    "dns": Endpoint(
        "dns", "10.244.7.6", "kube-system", {"k8s-app": "kube-dns"}, {(53, "UDP"): "dns", (53, "TCP"): "dns-tcp"}
    ),
    # A pod of another namespace wearing the suite's labels: labels alone must not open anything.
    "impostor": Endpoint(
        "impostor",
        "10.244.7.7",
        "other",
        {"suite.bank/role": "service", "app.kubernetes.io/name": "identity"},
        {(8000, "TCP"): "http"},
    ),
    "api-server": Endpoint("api-server", "172.20.0.10"),
    "object-storage": Endpoint("object-storage", "52.95.110.1"),
    "webhook": Endpoint("webhook", "192.0.2.10"),
    "tracing-backend": Endpoint("tracing-backend", "198.51.100.7"),
    "internet": Endpoint("internet", "203.0.113.5"),
}


def required_flows() -> set[Flow]:
    flows: set[Flow] = {
        ("edge", "gateway", 8000, "TCP"),
        ("ingress-nginx", "gateway", 8000, "TCP"),
        ("gateway", "redis", 6379, "TCP"),
        ("gateway", "collector", 4318, "TCP"),
        ("prometheus", "gateway", 8000, "TCP"),
        ("identity", "webhook", 443, "TCP"),
        ("collector", "tracing-backend", 443, "TCP"),
        ("prometheus", "collector", 8888, "TCP"),
    }
    for service in SERVICES:
        flows |= {
            ("gateway", service, 8000, "TCP"),
            (service, "gateway", 8000, "TCP"),
            (service, "collector", 4318, "TCP"),
            ("prometheus", service, 8000, "TCP"),
        }
        flows |= {(service, db, 5432, "TCP") for db in ("db-primary", "db-replica")}
    for client in ("suite-migrate", "suite-bootstrap"):
        flows |= {(client, db, 5432, "TCP") for db in ("db-primary", "db-replica")}
    for a, b in (("db-primary", "db-replica"), ("db-replica", "db-primary")):
        flows |= {(a, b, 5432, "TCP"), (a, b, 8000, "TCP")}
    for db in ("db-primary", "db-replica"):
        flows |= {
            ("operator", db, 8000, "TCP"),
            ("operator", db, 5432, "TCP"),
            ("prometheus", db, 9187, "TCP"),
            (db, "api-server", 443, "TCP"),
            (db, "api-server", 6443, "TCP"),
            (db, "object-storage", 443, "TCP"),
        }
    return flows


def network(overlay: str) -> Network:
    return Network(list(objects(overlay, "NetworkPolicy").values()), NAMESPACES[overlay])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_flow_the_suite_needs_is_allowed(overlay: str) -> None:
    pods = suite_pods(overlay) | OUTSIDE
    net = network(overlay)
    refused = sorted(
        flow for flow in required_flows() if not net.allows(pods[flow[0]], pods[flow[1]], flow[2], flow[3])
    )
    assert refused == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_resolves_names(overlay: str) -> None:
    net = network(overlay)
    for pod in suite_pods(overlay).values():
        assert net.allows(pod, OUTSIDE["dns"], 53, "UDP"), pod.name
        assert net.allows(pod, OUTSIDE["dns"], 53, "TCP"), pod.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_other_flow_between_the_suites_pods_is_denied(overlay: str) -> None:
    """All pairs among the suite's pods and the cluster's other pods (operator, Prometheus, edge,
    DNS, an impostor), on every port the destination listens on: only the needed flows pass."""
    pods = suite_pods(overlay)
    in_cluster = {name: pod for name, pod in OUTSIDE.items() if pod.namespace is not None}
    net = network(overlay)
    needed = required_flows() | {(pod, "dns", 53, protocol) for pod in pods for protocol in ("UDP", "TCP")}
    opened = sorted(
        (src.name, dst.name, port, protocol)
        for src, dst in itertools.permutations([*pods.values(), *in_cluster.values()], 2)
        if src.name in pods or dst.name in pods
        for port, protocol in dst.ports
        if (src.name, dst.name, port, protocol) not in needed and net.allows(src, dst, port, protocol)
    )
    assert opened == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_service_cannot_call_another_service_past_the_gateway(overlay: str) -> None:
    pods = suite_pods(overlay)
    net = network(overlay)
    for a, b in itertools.permutations(SERVICES, 2):
        assert not net.allows(pods[a], pods[b], 8000), (a, b)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nothing_outside_reaches_the_database_services_or_redis(overlay: str) -> None:
    pods = suite_pods(overlay)
    net = network(overlay)
    for outsider in ("edge", "impostor", "ingress-nginx"):
        for target, port in [("db-primary", 5432), ("redis", 6379), *((s, 8000) for s in SERVICES)]:
            assert not net.allows(OUTSIDE[outsider], pods[target], port), (outsider, target)
    assert not net.allows(OUTSIDE["impostor"], pods["gateway"], 8000)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_database_and_identity_and_the_collector_leave_the_cluster(overlay: str) -> None:
    pods = suite_pods(overlay)
    net = network(overlay)
    leaving = {
        (pod.name, outside)
        for pod in pods.values()
        for outside in ("api-server", "object-storage", "webhook", "tracing-backend", "internet")
        for port in (443, 6443)
        if net.allows(pod, OUTSIDE[outside], port)
    }
    # The instances reach object storage and the API server on 443/6443 at any address outside the
    # pod network (object storage has no fixed addresses); every other pod reaches one address.
    assert {(name, out) for name, out in leaving if not name.startswith("db-")} == {
        ("identity", "webhook"),
        ("collector", "tracing-backend"),
    }


def test_the_evaluator_reads_selectors_as_kubernetes_does() -> None:
    selector = {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "In", "values": ["x"]}]}
    assert matches_selector(selector, {"a": "1", "b": "x"})
    assert not matches_selector(selector, {"a": "1", "b": "y"})
    assert not matches_selector({"matchExpressions": [{"key": "c", "operator": "Exists"}]}, {"a": "1"})
    assert matches_selector({}, {"anything": "at all"})
    deny = {"metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    a = Endpoint("a", "10.0.0.1", "ns", {"x": "1"}, {(80, "TCP"): "http"})
    b = Endpoint("b", "10.0.0.2", "ns", {"x": "2"}, {(80, "TCP"): "http"})
    assert Network([], "ns").allows(a, b, 80)
    assert not Network([deny], "ns").allows(a, b, 80)
    open_b = {
        "metadata": {"name": "b"},
        "spec": {"podSelector": {"matchLabels": {"x": "2"}}, "ingress": [{"ports": [{"port": "http"}]}]},
    }
    egress_a = {"metadata": {"name": "a"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}}
    assert Network([deny, open_b, egress_a], "ns").allows(a, b, 80)
    assert not Network([deny, open_b, egress_a], "ns").allows(a, b, 81)
