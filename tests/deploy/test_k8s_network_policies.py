"""The NetworkPolicies allow exactly the call graph that the services' own settings describe
(``EGOV_<PEER>_ADDRESS`` and peer URLs), plus DNS, the OTel collector and each stateful service's
PostgreSQL; everything else is denied. Evaluated here with the NetworkPolicy semantics of the
Kubernetes API (policies are additive; a pod selected by a policy of a direction is isolated in
that direction), so no cluster or CNI is needed."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest
from k8s_render import (
    OVERLAYS,
    SERVICES,
    STATEFUL,
    Edge,
    Manifest,
    by_name,
    container_env,
    of_kind,
    peer_edges,
    pod_spec,
    render,
)

NAMESPACE = "egov-trust"


@dataclass(frozen=True)
class Endpoint:
    """A pod (in the namespace or outside it) or an address outside the cluster."""

    name: str
    pod_labels: dict[str, str] = field(default_factory=dict, hash=False)
    namespace_labels: dict[str, str] = field(default_factory=dict, hash=False)
    ip: str | None = None

    @property
    def in_namespace(self) -> bool:
        return self.namespace_labels.get("kubernetes.io/metadata.name") == NAMESPACE


def _outside(name: str, namespace: str, ns_labels: dict[str, str], pod: dict[str, str]) -> Endpoint:
    return Endpoint(name, pod, {"kubernetes.io/metadata.name": namespace, **ns_labels})


PORTAL = _outside("portal", "citizen-portal", {"trust.egov/portal": "true"}, {"app": "portal"})
INGRESS = _outside("ingress", "ingress-nginx", {"trust.egov/ingress": "true"}, {"app": "nginx"})
STRANGER = _outside("stranger", "other-team", {}, {"app": "whatever"})
DNS = _outside("dns", "kube-system", {}, {"k8s-app": "kube-dns"})
OTEL = _outside("otel", "observability", {}, {"app.kubernetes.io/name": "opentelemetry-collector"})
INTERNET = Endpoint("internet", ip="203.0.113.7")


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr.get("values", []):
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False  # pod IPs: the policies here never name pod CIDRs
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if other.ip is not None:
        return False
    ns_ok = (
        _selects(peer["namespaceSelector"], other.namespace_labels)
        if "namespaceSelector" in peer
        else other.in_namespace
    )
    pod_ok = _selects(peer["podSelector"], other.pod_labels) if "podSelector" in peer else True
    return ns_ok and pod_ok


def _port_matches(rule: dict[str, Any], port: int, target: Endpoint, named: dict[str, int]) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != "TCP" and port != 53:
            continue
        value = p.get("port")
        if value is None or value == port or (isinstance(value, str) and named.get(value) == port):
            return True
    return False


@dataclass
class Cluster:
    objects: tuple[Manifest, ...]
    pods: dict[str, Endpoint]
    container_ports: dict[str, dict[str, int]]

    def _policies(self, pod: Endpoint, direction: str) -> list[dict[str, Any]]:
        return [
            p
            for p in of_kind(self.objects, "NetworkPolicy")
            if direction in p["spec"].get("policyTypes", ["Ingress"])
            and _selects(p["spec"]["podSelector"], pod.pod_labels)
        ]

    def _allowed(self, pod: Endpoint, other: Endpoint, port: int, direction: str) -> bool:
        policies = self._policies(pod, direction)
        if not policies:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        named = self.container_ports.get(pod.name if direction == "Ingress" else other.name, {})
        for policy in policies:
            for rule in policy["spec"].get(key, []) or []:
                peers = rule.get(peers_key)
                if (not peers or any(_peer_matches(p, other) for p in peers)) and _port_matches(
                    rule, port, other, named
                ):
                    return True
        return False

    def can_connect(self, source: Endpoint, target: Endpoint, port: int) -> bool:
        egress = not source.in_namespace or self._allowed(source, target, port, "Egress")
        ingress = not target.in_namespace or self._allowed(target, source, port, "Ingress")
        return egress and ingress


def cluster(overlay: str) -> Cluster:
    objects = render(overlay)
    ns_labels = {"kubernetes.io/metadata.name": NAMESPACE}
    for ns in of_kind(objects, "Namespace"):
        ns_labels.update(ns["metadata"].get("labels", {}))
    pods: dict[str, Endpoint] = {}
    ports: dict[str, dict[str, int]] = {}
    for workload in [
        *of_kind(objects, "Deployment"),
        *of_kind(objects, "StatefulSet"),
        *of_kind(objects, "Job"),
    ]:
        name = workload["metadata"]["name"]
        labels = dict(workload["spec"]["template"]["metadata"]["labels"])
        pods[name] = Endpoint(name, labels, ns_labels)
        ports[name] = {
            p["name"]: p["containerPort"]
            for c in pod_spec(workload)["containers"]
            for p in c.get("ports", [])
        }
    return Cluster(objects, pods, ports)


def call_graph(overlay: str) -> set[Edge]:
    objects = render(overlay)
    edges: set[Edge] = set()
    for name in SERVICES:
        (container,) = pod_spec(by_name(objects, "Deployment", name))["containers"]
        env, _ = container_env(objects, container)
        edges.update(peer_edges(name, env))
    return edges


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_describe_the_call_graph_of_the_design(overlay: str) -> None:
    services = {(e.source, e.target) for e in call_graph(overlay)}
    assert services == {
        ("signing", "keys"),
        ("signing", "registry"),
        ("keys", "identity"),
        # registry verifies issuing portals' bearer tokens against identity's JWKS
        ("registry", "identity"),
        ("verify-portal", "signing"),
        ("verify-portal", "registry"),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_policies_allow_exactly_the_calls_the_settings_make(overlay: str) -> None:
    c = cluster(overlay)
    graph = call_graph(overlay)
    allowed, expected = set(), set()
    for source in SERVICES:
        for target in SERVICES:
            if source == target:
                continue
            for port in c.container_ports[target].values():
                edge = Edge(source, target, port)
                if c.can_connect(c.pods[source], c.pods[target], port):
                    allowed.add(edge)
                if edge in graph:
                    expected.add(edge)
    assert allowed == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_portals_reach_identity_keys_signing_registry_over_grpc_only(overlay: str) -> None:
    """Keys for credentials (story 1's "has a signing credential issued"); its SignHash is
    signing's alone, by EGOV_KEYS_SIGN_CALLERS, not by the network."""
    c = cluster(overlay)
    reachable = {
        (target, port)
        for target in SERVICES
        for port in c.container_ports[target].values()
        if c.can_connect(PORTAL, c.pods[target], port)
    }
    assert reachable == {
        ("identity", 50051),
        ("keys", 50052),
        ("signing", 50054),
        ("registry", 50053),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_controller_reaches_only_the_public_http_endpoints(overlay: str) -> None:
    c = cluster(overlay)
    reachable = {
        (target, port)
        for target in SERVICES
        for port in c.container_ports[target].values()
        if c.can_connect(INGRESS, c.pods[target], port)
    }
    assert reachable == {
        ("identity", 8081),
        ("keys", 8082),
        ("verify-portal", 8080),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_signing_reaches_the_public_trust_service_urls(overlay: str) -> None:
    c = cluster(overlay)
    callers = {n for n, pod in c.pods.items() if c.can_connect(pod, INGRESS, 443)}
    assert callers == {"signing"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_other_namespaces_and_the_internet_are_denied(overlay: str) -> None:
    c = cluster(overlay)
    for name, pod in c.pods.items():
        for port in c.container_ports[name].values():
            assert not c.can_connect(STRANGER, pod, port), (name, port)
        assert not c.can_connect(pod, INTERNET, 443), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_resolves_names_and_exports_telemetry(overlay: str) -> None:
    c = cluster(overlay)
    for name, pod in c.pods.items():
        assert c.can_connect(pod, DNS, 53), name
        if name != "postgres":
            assert c.can_connect(pod, OTEL, 4317), name


def test_dev_postgres_is_reachable_only_by_stateful_services_and_their_migrations() -> None:
    c = cluster("dev")
    db = c.pods["postgres"]
    clients = {n for n in c.pods if c.can_connect(c.pods[n], db, 5432)}
    assert clients == {*STATEFUL, *(f"{n}-migrate" for n in STATEFUL)}
    assert not c.can_connect(PORTAL, db, 5432)


def test_prod_database_egress_is_for_stateful_services_only() -> None:
    c = cluster("prod")
    policy = by_name(c.objects, "NetworkPolicy", "allow-postgres-egress")
    database = Endpoint(
        "database", ip=policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"].split("/")[0]
    )
    clients = {n for n in c.pods if c.can_connect(c.pods[n], database, 5432)}
    assert clients == {*STATEFUL, *(f"{n}-migrate" for n in STATEFUL), "keys-bootstrap"}


def test_prod_hsm_is_reachable_by_keys_only() -> None:
    c = cluster("prod")
    policy = by_name(c.objects, "NetworkPolicy", "allow-hsm-egress")
    rule = policy["spec"]["egress"][0]
    hsm = Endpoint("hsm", ip=rule["to"][0]["ipBlock"]["cidr"].split("/")[0])
    port = rule["ports"][0]["port"]
    assert {n for n in c.pods if c.can_connect(c.pods[n], hsm, port)} == {"keys", "keys-bootstrap"}
