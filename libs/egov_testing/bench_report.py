"""``make bench`` report: every service's figures beside an anchor measured in the same run.

Each service's benchmark (``tests/bench/``) writes ``bench/results-<service>.json``. This module
measures a few anchors on the same machine right after them, then writes ``bench/results.json``
(everything, machine readable) and ``bench/RESULTS.md`` (the table the README shows). An anchor is
a plain operation the figure is bounded by, so the ratio says how close the service gets to the
machine rather than how fast the machine is: registrations per second as a fraction of bare
loopback gRPC round trips per second, and so on.

A results file is a JSON object of benchmark groups; ``machine`` is ignored (this run's is
reported). A group maps figure names to a number or to an object::

    {
      "grpc_sqlite_10000": {
        "documents": 10000,
        "single_registrations_per_s": 812,
        "sign_ms": {"value": 4.1, "unit": "ms", "anchor": "ecdsa_p256_sign_ms"}
      },
      "anchors": {"ecdsa_p256_sign_ms": {"value": 0.05, "unit": "ms"}}
    }

A figure's anchor is the one it names; else a ``*_per_s`` figure of a group whose name starts
with ``grpc_`` is set against :data:`GRPC_ANCHOR`; else it has none (shown as "–"). Anchors a file
brings under ``"anchors"`` win over the ones measured here. Figures that are not rates or times
(``documents``) are parameters and shown as such.

Run: ``python -m egov_testing.bench_report [--bench-dir bench]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "GRPC_ANCHOR",
    "Anchor",
    "Figure",
    "collect_figures",
    "main",
    "measure_anchors",
    "render_markdown",
    "write_report",
]

#: Round trips per second of grpc.health.v1 Check from one client to a server in another
#: process over loopback: the ceiling of any one-call-at-a-time gRPC figure.
GRPC_ANCHOR = "grpc_health_check_per_s"

_RATE_SUFFIXES = ("_per_s", "_per_second")
_TIME_SUFFIXES = ("_ms", "_s", "_seconds", "_us")
_ANCHOR_BUDGET_S = 1.0  # seconds of measuring per anchor


@dataclass(frozen=True)
class Anchor:
    """A plain operation measured on this machine in this run."""

    name: str
    value: float
    unit: str
    what: str


@dataclass(frozen=True)
class Figure:
    """One measured figure of a service's benchmark group, with its anchor if it has one."""

    service: str
    group: str
    name: str
    value: float
    unit: str
    anchor: str | None = None

    @property
    def is_parameter(self) -> bool:
        return self.unit == ""


# -- anchors -----------------------------------------------------------------------------------


def _rate(operation: Callable[[], None], budget: float = _ANCHOR_BUDGET_S) -> float:
    """Calls of ``operation`` per second, run for about ``budget`` seconds (bounded in count)."""
    count, started = 0, time.perf_counter()
    deadline = started + budget
    while time.perf_counter() < deadline and count < 1_000_000:
        operation()
        count += 1
    return count / (time.perf_counter() - started)


def _sha256_mib_per_s() -> float:
    block = os.urandom(1024 * 1024)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < _ANCHOR_BUDGET_S and count < 4096:
        hashlib.sha256(block).digest()
        count += 1
    return count / (time.perf_counter() - started)


def _ecdsa_p256_sign_per_s() -> float:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())

    def sign() -> None:
        key.sign(b"anchor", ec.ECDSA(hashes.SHA256()))

    return _rate(sign)


def _sqlite_commit_per_s() -> float:
    with tempfile.TemporaryDirectory(prefix="egov-anchor-") as folder:
        db = sqlite3.connect(Path(folder) / "anchor.db", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
            row = os.urandom(256)

            def insert() -> None:
                db.execute("BEGIN")
                db.execute("INSERT INTO t (body) VALUES (?)", (row,))
                db.execute("COMMIT")

            return _rate(insert)
        finally:
            db.close()


_HEALTH_SERVER = """
import sys
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
servicer = health.HealthServicer()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop(None)
"""


def _grpc_health_check_per_s() -> float:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server = subprocess.Popen(
        [sys.executable, "-c", _HEALTH_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            stub.Check(request, timeout=10, wait_for_ready=True)  # connected before timing
            return _rate(lambda: stub.Check(request, timeout=10) and None)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


_ANCHORS: dict[str, tuple[str, str, Callable[[], float]]] = {
    GRPC_ANCHOR: (
        "1/s",
        "grpc.health.v1 Check round trips, one client, server in another process, loopback",
        _grpc_health_check_per_s,
    ),
    "sqlite_commit_per_s": (
        "1/s",
        "one-row INSERT + COMMIT, SQLite WAL, synchronous=NORMAL, tmp directory",
        _sqlite_commit_per_s,
    ),
    "ecdsa_p256_sign_per_s": (
        "1/s",
        "ECDSA P-256 / SHA-256 signatures with pyca/cryptography",
        _ecdsa_p256_sign_per_s,
    ),
    "sha256_mib_per_s": ("MiB/s", "SHA-256 of 1 MiB blocks (hashlib)", _sha256_mib_per_s),
}


def measure_anchors(names: Iterable[str] | None = None) -> dict[str, Anchor]:
    """Measure the named anchors (default: all known ones) on this machine now."""
    wanted = list(_ANCHORS) if names is None else [n for n in names if n in _ANCHORS]
    anchors = {}
    for name in wanted:
        unit, what, measure = _ANCHORS[name]
        anchors[name] = Anchor(name, round(measure(), 1), unit, what)
    return anchors


# -- figures -----------------------------------------------------------------------------------


def _unit_of(name: str) -> str:
    if name.endswith(_RATE_SUFFIXES):
        return "1/s"
    for suffix in _TIME_SUFFIXES:
        if name.endswith(suffix):
            return suffix[1:]
    return ""


def collect_figures(
    service: str, results: Mapping[str, Any]
) -> tuple[list[Figure], dict[str, Anchor]]:
    """Figures of one results file, and the anchors it brings itself.

    Raises ``ValueError`` naming the group and figure when a value is not a number.
    """
    figures: list[Figure] = []
    own: dict[str, Anchor] = {}
    for name, spec in (results.get("anchors") or {}).items():
        value = spec["value"] if isinstance(spec, Mapping) else spec
        unit = spec.get("unit", _unit_of(name)) if isinstance(spec, Mapping) else _unit_of(name)
        own[name] = Anchor(name, float(value), unit, f"measured by the {service} benchmark")
    for group, entries in sorted(results.items()):
        if group in {"machine", "anchors"} or not isinstance(entries, Mapping):
            continue
        for name, entry in entries.items():
            if isinstance(entry, Mapping):
                value, unit, anchor = entry.get("value"), entry.get("unit"), entry.get("anchor")
            else:
                value, unit, anchor = entry, None, None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{service}: {group}.{name} is not a number: {value!r}")
            unit = unit if unit is not None else _unit_of(name)
            if anchor is None and unit == "1/s" and group.startswith("grpc_"):
                anchor = GRPC_ANCHOR
            figures.append(Figure(service, group, name, float(value), unit, anchor))
    return figures, own


def _ratio(figure: Figure, anchors: Mapping[str, Anchor]) -> float | None:
    anchor = anchors.get(figure.anchor) if figure.anchor else None
    if anchor is None or anchor.value == 0 or anchor.unit != figure.unit:
        return None
    return figure.value / anchor.value


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def render_markdown(
    figures: list[Figure], anchors: Mapping[str, Anchor], machine: Mapping[str, Any]
) -> str:
    """The RESULTS.md table: figure, value, its anchor and the ratio of the two."""
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {machine['cpus']} CPUs, Python {machine['python']} ({machine['platform']}); "
        f"run {machine['generated']}. Each figure is set against an anchor measured on the same "
        "machine in the same run; the ratio is figure / anchor.",
        "",
        "| service | benchmark | figure | value | anchor | anchor value | ratio |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for f in figures:
        if f.is_parameter:
            continue
        anchor = anchors.get(f.anchor) if f.anchor else None
        ratio = _ratio(f, anchors)
        lines.append(
            f"| {f.service} | {f.group} | {f.name} | {_number(f.value)} {f.unit} | "
            f"{anchor.name if anchor else '–'} | "
            f"{_number(anchor.value) + ' ' + anchor.unit if anchor else '–'} | "
            f"{f'{ratio:.3f}' if ratio is not None else '–'} |"
        )
    parameters = [f for f in figures if f.is_parameter]
    if parameters:
        lines += [
            "",
            "Parameters: "
            + "; ".join(f"{f.service} {f.group} {f.name} = {_number(f.value)}" for f in parameters)
            + ".",
        ]
    lines += ["", "Anchors:", ""]
    lines += [f"- `{a.name}`: {a.what} ({_number(a.value)} {a.unit})" for a in anchors.values()]
    return "\n".join(lines) + "\n"


def write_report(bench_dir: Path, *, anchors: Mapping[str, Anchor] | None = None) -> Path:
    """Read ``bench_dir/results-*.json``, measure the anchors they need (unless given), write
    ``results.json`` and ``RESULTS.md`` there. Returns the Markdown path.

    Raises ``FileNotFoundError`` when there are no results files (run the benchmarks first).
    """
    files = sorted(bench_dir.glob("results-*.json"))
    if not files:
        raise FileNotFoundError(f"no {bench_dir}/results-*.json: run the benchmarks first")
    figures: list[Figure] = []
    own: dict[str, Anchor] = {}
    for path in files:
        service = path.stem.removeprefix("results-")
        found, brought = collect_figures(service, json.loads(path.read_text()))
        figures += found
        own.update(brought)
    needed = {f.anchor for f in figures if f.anchor} - set(own)
    measured = dict(anchors) if anchors is not None else measure_anchors(needed)
    all_anchors = {**measured, **own}
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report = {
        "machine": machine,
        "anchors": {name: asdict(a) for name, a in all_anchors.items()},
        "figures": [
            {**asdict(f), "ratio": _ratio(f, all_anchors)} for f in figures if not f.is_parameter
        ],
        "parameters": [asdict(f) for f in figures if f.is_parameter],
        "sources": [p.name for p in files],
    }
    (bench_dir / "results.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    markdown = bench_dir / "RESULTS.md"
    markdown.write_text(render_markdown(figures, all_anchors, machine))
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bench-dir", type=Path, default=Path("bench"))
    args = parser.parse_args(argv)
    try:
        path = write_report(args.bench_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"bench_report: {exc}", file=sys.stderr)
        return 1
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
