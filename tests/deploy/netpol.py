"""A NetworkPolicy evaluator (networking.k8s.io/v1 semantics) over a set of pods and outside endpoints.

A flow src -> dst:port/protocol is allowed when both ends allow it: the destination is not
isolated for ingress (no policy of its namespace selects it with Ingress) or some ingress rule
of a policy selecting it admits the source on that port; and likewise the source for egress.
Only the suite's namespace has policies here; endpoints outside it (other namespaces, addresses
outside the cluster) are not isolated. An ipBlock matches by address (pods included, which is the
conservative reading: some CNIs apply ipBlocks to pod addresses).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Policy = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    name: str
    ip: str
    namespace: str | None = None  # None: an address outside the cluster
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    #: (port, protocol) pairs it listens on, with their names (for named ports).
    ports: dict[tuple[int, str], str] = field(default_factory=dict, hash=False, compare=False)


def matches_selector(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector; an empty selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def _peer_matches(peer: dict[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(endpoint.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or [])
    if endpoint.namespace is None:
        return False  # selectors only select pods
    if "namespaceSelector" in peer:
        if not matches_selector(peer["namespaceSelector"], _namespace_labels(endpoint.namespace)):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return matches_selector(peer.get("podSelector"), endpoint.labels)


def _port_matches(rule_ports: list[dict[str, Any]] | None, dst: Endpoint, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for item in rule_ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        wanted = item.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if dst.ports.get((port, protocol)) == wanted:
                return True
            continue
        if wanted <= port <= item.get("endPort", wanted):
            return True
    return False


def _types(policy: Policy) -> set[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


class Network:
    def __init__(self, policies: list[Policy], namespace: str) -> None:
        self.policies = policies
        self.namespace = namespace

    def _selecting(self, endpoint: Endpoint, direction: str) -> list[Policy]:
        if endpoint.namespace != self.namespace:
            return []
        return [
            p
            for p in self.policies
            if direction in _types(p) and matches_selector(p["spec"].get("podSelector"), endpoint.labels)
        ]

    def _side_allows(  # noqa: PLR0917 (the flow's parts, each named at the two call sites)
        self, subject: Endpoint, other: Endpoint, dst: Endpoint, port: int, protocol: str, direction: str
    ) -> bool:
        policies = self._selecting(subject, direction)
        if not policies:
            return True
        section, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(section) or []:
                peers = rule.get(peers_key)
                if peers and not any(_peer_matches(peer, self.namespace, other) for peer in peers):
                    continue
                if _port_matches(rule.get("ports"), dst, port, protocol):
                    return True
        return False

    def allows(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._side_allows(src, dst, dst, port, protocol, "Egress") and self._side_allows(
            dst, src, dst, port, protocol, "Ingress"
        )
