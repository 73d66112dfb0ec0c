"""``make bench`` report: every service's figures beside an anchor measured in the same run.

Each service's benchmark (``tests/bench/``) writes ``bench/results-<service>.json``. This module
measures a few anchors on the same machine right after them, then writes ``bench/results.json``
(everything, machine readable) and ``bench/RESULTS.md`` (the table the README shows). An anchor is
a plain operation the figure is bounded by, so the ratio says how close the service gets to the
machine rather than how fast the machine is: SignHash calls per second as a fraction of bare
ECDSA signatures per second, token grants per second as a fraction of loopback gRPC round trips.

A results file is any JSON object; every number in it is a figure, named by its path
(``sign_hash_per_second.pkcs11.2_workers``). ``machine`` and ``when`` are ignored (this run's
machine is reported); strings are notes; figures named ``*ratio*`` are derived and left out (the
report computes its own ratios). The unit comes from the path: ``per_second``/``per_s`` -> 1/s,
``_ms``/``ms_`` -> ms, ``seconds``/``_s`` -> s, ``bytes`` -> B; a number with none is a
parameter (``documents``, ``n``) and listed apart.

The anchor of a figure, first match wins:

1. the one it names: a figure may be ``{"value": 12.5, "unit": "1/s", "anchor": "<name>"}``,
   and a file may bring its own under ``"anchors": {"<name>": {"value": ..., "unit": ...}}``;
2. a baseline measured beside it by the benchmark itself: in a group that has a ``baseline``,
   ``anchor``, ``reference`` or ``*in_process`` member (signing's ``pyhanko_in_process``), the
   same-named figure of that member (baselines appear in the anchor column, not as rows);
3. one of this module's machine anchors (:data:`MACHINE_ANCHORS`) chosen by the words of the
   path: ``grpc`` -> a loopback gRPC round trip, ``sign_hash``/``ocsp``/``tsa`` -> an ECDSA P-256
   signature, ``verif`` -> an ECDSA verification (rates, and times as their inverse);
4. none ("–").

Run: ``python -m egov_testing.bench_report [--bench-dir bench]``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "BESIDE",
    "GRPC_ANCHOR",
    "MACHINE_ANCHORS",
    "SIGN_ANCHOR",
    "VERIFY_ANCHOR",
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
SIGN_ANCHOR = "ecdsa_p256_sign_per_s"
VERIFY_ANCHOR = "ecdsa_p256_verify_per_s"

#: Words of a figure's path -> the machine anchor it is set against (first match wins).
_WORD_ANCHORS = (
    ("grpc", GRPC_ANCHOR),
    ("sign_hash", SIGN_ANCHOR),
    ("ocsp", SIGN_ANCHOR),
    ("tsa", SIGN_ANCHOR),
    ("verif", VERIFY_ANCHOR),
)
#: Members of a group that hold the benchmark's own baseline for their siblings.
_BASELINE = re.compile(r"^(baseline|anchor|reference|(.*_)?in_process)$")
_IGNORED_TOP = {"machine", "when", "anchors"}
BESIDE = "the benchmark's own baseline, measured beside the figure in the same run"
_ANCHOR_BUDGET_S = 1.0  # seconds of measuring per anchor


@dataclass(frozen=True)
class Anchor:
    """A plain operation measured on this machine in this run (or by a benchmark beside its
    figures)."""

    name: str
    value: float
    unit: str
    what: str


@dataclass(frozen=True)
class Figure:
    """One number of a service's results, named by its path in the file."""

    service: str
    path: tuple[str, ...]
    value: float
    unit: str
    anchor: str | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def is_parameter(self) -> bool:
        return self.unit == ""

    @property
    def is_baseline(self) -> bool:
        """Measured as another figure's anchor (shown in the anchor column instead)."""
        return any(_BASELINE.match(part) for part in self.path[1:-1])


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

    def digest() -> None:
        hashlib.sha256(block).digest()

    return _rate(digest)


def _ecdsa_p256_sign_per_s() -> float:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())

    def sign() -> None:
        key.sign(b"anchor", ec.ECDSA(hashes.SHA256()))

    return _rate(sign)


def _ecdsa_p256_verify_per_s() -> float:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public, signature = key.public_key(), key.sign(b"anchor", ec.ECDSA(hashes.SHA256()))

    def verify() -> None:
        public.verify(signature, b"anchor", ec.ECDSA(hashes.SHA256()))

    return _rate(verify)


def _sqlite_commit_per_s() -> float:
    with tempfile.TemporaryDirectory(prefix="egov-anchor-") as folder:
        db = sqlite3.connect(Path(folder) / "anchor.db", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # as every store commits (egov_common.db)
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

            def check() -> None:
                stub.Check(request, timeout=10)

            return _rate(check)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


#: name -> (what it is, how to measure it in calls per second).
MACHINE_ANCHORS: dict[str, tuple[str, Callable[[], float]]] = {
    GRPC_ANCHOR: (
        "grpc.health.v1 Check round trips, one client, server in another process, loopback",
        _grpc_health_check_per_s,
    ),
    SIGN_ANCHOR: ("ECDSA P-256/SHA-256 signatures, pyca/cryptography", _ecdsa_p256_sign_per_s),
    VERIFY_ANCHOR: (
        "ECDSA P-256/SHA-256 verifications, pyca/cryptography",
        _ecdsa_p256_verify_per_s,
    ),
    "sqlite_commit_per_s": (
        "one-row INSERT + COMMIT, SQLite WAL, synchronous=FULL (synced, as the stores commit)",
        _sqlite_commit_per_s,
    ),
    "sha256_mib_per_s": ("SHA-256 of 1 MiB blocks (hashlib), MiB", _sha256_mib_per_s),
}


def _time_anchor_name(rate_name: str) -> str:
    return rate_name.removesuffix("_per_s") + "_ms"


def measure_anchors(names: Iterable[str] | None = None) -> dict[str, Anchor]:
    """Measure the named machine anchors (default: all) now. A rate anchor ``x_per_s`` also
    yields its time form ``x_ms`` (1000 / rate) for figures that are durations."""
    wanted = list(MACHINE_ANCHORS) if names is None else [n for n in names if n in MACHINE_ANCHORS]
    anchors: dict[str, Anchor] = {}
    for name in dict.fromkeys(wanted):
        what, measure = MACHINE_ANCHORS[name]
        rate = measure()
        unit = "MiB/s" if name.endswith("_mib_per_s") else "1/s"
        anchors[name] = Anchor(name, round(rate, 1), unit, what)
        if unit == "1/s" and rate > 0:
            ms = _time_anchor_name(name)
            anchors[ms] = Anchor(ms, round(1000 / rate, 4), "ms", f"one of: {what}")
    return anchors


# -- figures -----------------------------------------------------------------------------------


def _unit_of(path: tuple[str, ...]) -> str:
    """Unit from the figure's name, else from the groups it sits in; "" for a parameter."""
    for part in (p.lower() for p in reversed(path)):
        if "per_second" in part or part.endswith("_per_s") or "_per_s_" in part:
            return "1/s"
        if part.endswith("_ms") or part.startswith("ms_") or "_ms_" in part or part == "ms":
            return "ms"
        if part == "seconds" or part.endswith(("_seconds", "_s")):
            return "s"
        if "bytes" in part:
            return "B"
    return ""


def _numbers(
    node: Mapping[str, Any], path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Any, Mapping[str, Any]]]:
    """(path, leaf, the mapping that holds it) for every number or figure object below."""
    for key, value in node.items():
        here = (*path, str(key))
        if isinstance(value, Mapping) and "value" not in value:
            yield from _numbers(value, here)
        else:
            yield here, value, node


def _baseline(
    path: tuple[str, ...], root: Mapping[str, Any]
) -> tuple[tuple[str, ...], float] | None:
    """The same-named figure of a baseline member beside the figure's own group, if any."""
    if len(path) < 2:
        return None
    parent: Any = root
    for part in path[:-2]:
        parent = parent[part]
    member, leaf = path[-2], path[-1]
    if _BASELINE.match(member):
        return None  # a baseline is not set against itself
    for sibling, values in parent.items():
        if sibling != member and _BASELINE.match(str(sibling)) and isinstance(values, Mapping):
            value = values.get(leaf)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return (*path[:-2], str(sibling), leaf), float(value)
    return None


def collect_figures(
    service: str, results: Mapping[str, Any]
) -> tuple[list[Figure], dict[str, Anchor]]:
    """Figures of one results file, and the anchors it brings (its own and its baselines)."""
    figures: list[Figure] = []
    own: dict[str, Anchor] = {}
    for name, spec in (results.get("anchors") or {}).items():
        value = spec["value"] if isinstance(spec, Mapping) else spec
        unit = spec.get("unit") if isinstance(spec, Mapping) else None
        own[name] = Anchor(
            name, float(value), unit or _unit_of((name,)), f"measured by the {service} benchmark"
        )
    body = {k: v for k, v in results.items() if k not in _IGNORED_TOP}
    for path, leaf, _holder in _numbers(body, ()):
        if isinstance(leaf, Mapping):
            value, unit, anchor = leaf.get("value"), leaf.get("unit"), leaf.get("anchor")
        else:
            value, unit, anchor = leaf, None, None
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # a note, a flag
        if "ratio" in path[-1].lower().split("_"):  # not "registrations"
            continue  # derived by the benchmark; the report computes its own
        unit = unit if unit is not None else _unit_of(path)
        if anchor is None and unit:
            baseline = _baseline(path, body)
            if baseline is not None:
                anchor = f"{service}:{'.'.join(baseline[0])}"
                own[anchor] = Anchor(anchor, baseline[1], unit, BESIDE)
        if anchor is None and unit in {"1/s", "ms"}:
            words = "_".join(path).lower()
            for word, rate_anchor in _WORD_ANCHORS:
                if word in words:
                    anchor = rate_anchor if unit == "1/s" else _time_anchor_name(rate_anchor)
                    break
        figures.append(Figure(service, path, float(value), unit, anchor))
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
        "machine in the same run; ratio = figure / anchor.",
        "",
        "| service | figure | value | anchor | anchor value | ratio |",
        "|---|---|---:|---|---:|---:|",
    ]
    for f in figures:
        if f.is_parameter or f.is_baseline:
            continue
        anchor = anchors.get(f.anchor) if f.anchor else None
        ratio = _ratio(f, anchors)
        shown = f"{_number(anchor.value)} {anchor.unit}" if anchor else "–"
        label = "–"
        if anchor is not None:
            label = anchor.name
            if anchor.what == BESIDE:  # service:group.member.figure -> member.figure
                label = ".".join(anchor.name.split(".")[-2:])
        lines.append(
            f"| {f.service} | {f.name} | {_number(f.value)} {f.unit} | {label} | {shown} | "
            f"{f'{ratio:.3g}' if ratio is not None else '–'} |"
        )
    parameters = [f for f in figures if f.is_parameter]
    if parameters:
        listed = "; ".join(f"{f.service} {f.name} = {_number(f.value)}" for f in parameters)
        lines += ["", f"Parameters: {listed}."]
    used = {f.anchor for f in figures if f.anchor}
    lines += ["", "Anchors:", ""]
    lines += [
        f"- `{a.name}`: {a.what} ({_number(a.value)} {a.unit})"
        for a in anchors.values()
        if a.name in used and a.what != BESIDE
    ]
    if any(a.what == BESIDE for a in anchors.values() if a.name in used):
        lines.append(f"- `<member>.<figure>`: {BESIDE}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Target:
    """A target an issue sets, checked against the figures whose paths match ``patterns``.

    ``patterns`` are fnmatch patterns on ``service:dotted.path`` (ratios included: a target may
    be a ratio the benchmark derived), less those matching ``excludes``; ``at_least`` says
    which way is better. The best matching
    figure is reported, so a target met by one configuration and missed by another reads as met
    only when a separate row does not say otherwise.
    """

    what: str
    patterns: tuple[str, ...]
    threshold: float
    unit: str
    at_least: bool = True
    excludes: tuple[str, ...] = ()


#: The targets of the issues, on a 2-core machine.
TARGETS: tuple[Target, ...] = (
    Target("registry: registrations/s, one per call, SQLite",
           ("registry:grpc_sqlite_*.single_registrations_per_s",), 2000, "1/s"),
    Target("registry: registrations/s, batched, SQLite",
           ("registry:grpc_sqlite_*.batched_registrations_per_s",), 2000, "1/s"),
    Target("registry: lookups/s (GetDocument or LookupByHash), SQLite, Python clients",
           ("registry:grpc_sqlite_*.get_document_per_s",
            "registry:grpc_sqlite_*.lookup_by_hash_per_s"), 5000, "1/s",
           excludes=("registry:*.server_capacity.*",)),
    # The server alone: h2load as the clients (a few % of a core, where the Python clients
    # take about as much CPU as the server). Two processes: one Python process uses one core.
    Target("registry: lookups/s (GetDocument or LookupByHash), SQLite, server capacity "
           "(2 processes, h2load clients)",
           ("registry:grpc_sqlite_*_2_processes.server_capacity.get_document_per_s",
            "registry:grpc_sqlite_*_2_processes.server_capacity.lookup_by_hash_per_s"),
           5000, "1/s"),
    # The same with a C++ client that sends a new registration each call (grpc_replay).
    Target("registry: registrations/s, one per call, SQLite, server capacity "
           "(grpc_replay clients)",
           ("registry:grpc_sqlite_*.server_capacity.registrations_per_s",), 2000, "1/s"),
    # And with 32 connections: more calls in flight make bigger groups per commit.
    Target("registry: registrations/s, one per call, SQLite, server capacity "
           "(grpc_replay clients, 32 connections)",
           ("registry:grpc_sqlite_*.server_capacity.registrations_32_connections_per_s",),
           2000, "1/s"),
    Target("registry: inclusion proof at 1M leaves, median",
           ("registry:proofs_1m_leaves_*.inclusion_proof_ms_median",), 5, "ms", at_least=False),
    Target("keys: SignHash calls/s, SoftHSM-wrapped P-256",
           ("keys:sign_hash_calls_per_second.pkcs11.*",), 800, "1/s"),
    Target("keys: signatures/s through SignHash batches, SoftHSM-wrapped P-256",
           ("keys:signatures_per_second_batches_of_*.pkcs11.*",), 800, "1/s"),
    Target("identity: refresh or client-credentials grants/s",
           ("identity:grants_per_second_*.refresh_*",
            "identity:grants_per_second_*.client_credentials_*"), 1200, "1/s"),
    Target("signing: B-B throughput, ours over pyHanko in-process (same concurrency)",
           ("signing:sign_B-B_workers*.throughput_ratio_ours_over_pyhanko",), 2.0, "×"),
    Target("signing: B-LTA time, ours over pyHanko in-process (same concurrency)",
           ("signing:sign_B-LTA_workers*.time_ratio_ours_over_pyhanko",), 1.0, "×",
           at_least=False),
    Target("signing: verification time, over gRPC over in-process",
           ("signing:verify_*.time_ratio_grpc_over_in_process",), 1.2, "×", at_least=False),
    Target("signing: peak memory signing a 10 MB PDF, over the file size",
           ("signing:pdf_10MB.peak_growth_over_file_size",), 3.0, "×", at_least=False),
)


def _all_numbers(service: str, results: Mapping[str, Any]) -> dict[str, float]:
    """``service:dotted.path`` -> value of every number in a results file."""
    body = {k: v for k, v in results.items() if k not in _IGNORED_TOP}
    out: dict[str, float] = {}
    for path, leaf, _holder in _numbers(body, ()):
        value = leaf.get("value") if isinstance(leaf, Mapping) else leaf
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{service}:{'.'.join(path)}"] = float(value)
    return out


def check_targets(numbers: Mapping[str, float]) -> list[dict[str, Any]]:
    """Each target with the best and worst matching figures (configurations: concurrency,
    database, size) and ``met``: "yes" when every configuration meets it, "partly" when only
    some do, "no" when none does, None when nothing was measured."""
    rows: list[dict[str, Any]] = []
    for target in TARGETS:
        found = {
            name: value
            for name, value in numbers.items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in target.patterns)
            and not any(fnmatch.fnmatchcase(name, pattern) for pattern in target.excludes)
        }

        def meets(value: float, target: Target = target) -> bool:
            return value >= target.threshold if target.at_least else value <= target.threshold

        better, worse = (max, min) if target.at_least else (min, max)
        best_name = better(found, key=found.__getitem__, default=None)
        worst_name = worse(found, key=found.__getitem__, default=None)
        met: str | None = None
        if found:
            passing = sum(meets(v) for v in found.values())
            met = "yes" if passing == len(found) else ("partly" if passing else "no")
        sign = "≥" if target.at_least else "≤"
        rows.append({
            "what": target.what,
            "target": f"{sign} {_number(target.threshold)} {target.unit}",
            "unit": target.unit,
            "best": found[best_name] if best_name is not None else None,
            "best_figure": best_name,
            "worst": found[worst_name] if worst_name is not None else None,
            "worst_figure": worst_name,
            "configurations": len(found),
            "met": met,
        })
    return rows


def render_targets(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| target | goal | best measured | worst measured | met |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        def shown(value: float | None, unit: str = row["unit"]) -> str:
            return "not measured" if value is None else f"{_number(value)} {unit}"

        met = {"yes": "yes", "partly": "**partly**", "no": "**no**", None: "–"}[row["met"]]
        lines.append(
            f"| {row['what']} | {row['target']} | {shown(row['best'])} | "
            f"{shown(row['worst'])} | {met} |"
        )
    return "\n".join(lines) + "\n"


README_START = "<!-- bench:start (written by `make bench`) -->"
README_END = "<!-- bench:end -->"


def update_readme(readme: Path, machine: Mapping[str, Any], targets: str, table: str) -> bool:
    """Replace what stands between the README's bench markers with this run's targets and its
    full table (folded). Returns False, changing nothing, when the markers are absent."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    full = table.split("\n", 2)[2].lstrip("\n")  # without the '# Benchmarks' heading
    body = (
        f"{README_START}\n"
        f"Report written {machine['generated']} on {machine['cpus']} CPUs, Python "
        f"{machine['python']}, from the latest `bench/results-<service>.json` (each benchmark "
        "writes its own when it runs). Targets from the issues, over every configuration "
        "measured (concurrency, database, size):\n\n"
        f"{targets}\n<details><summary>Every figure beside its anchor</summary>\n\n"
        f"{full}\n</details>\n"
    )
    readme.write_text(text[:start] + body + text[end:])
    return True


def write_report(bench_dir: Path, *, anchors: Mapping[str, Anchor] | None = None) -> Path:
    """Read ``bench_dir/results-*.json``, measure the machine anchors they need (unless given),
    write ``results.json`` and ``RESULTS.md`` there. Returns the Markdown path.

    Raises ``FileNotFoundError`` when there are no results files (run the benchmarks first).
    """
    files = sorted(bench_dir.glob("results-*.json"))
    if not files:
        raise FileNotFoundError(f"no {bench_dir}/results-*.json: run the benchmarks first")
    figures: list[Figure] = []
    own: dict[str, Anchor] = {}
    numbers: dict[str, float] = {}
    for path in files:
        service = path.stem.removeprefix("results-")
        results = json.loads(path.read_text())
        found, brought = collect_figures(service, results)
        figures += found
        own.update(brought)
        numbers.update(_all_numbers(service, results))
    needed = {
        base
        for f in figures
        if f.anchor and f.anchor not in own
        for base in MACHINE_ANCHORS
        if f.anchor in {base, _time_anchor_name(base)}
    }
    measured = dict(anchors) if anchors is not None else measure_anchors(sorted(needed))
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
            {**asdict(f), "name": f.name, "ratio": _ratio(f, all_anchors)}
            for f in figures
            if not f.is_parameter
        ],
        "parameters": [{**asdict(f), "name": f.name} for f in figures if f.is_parameter],
        "sources": [p.name for p in files],
        "targets": check_targets(numbers),
    }
    (bench_dir / "results.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    targets = render_targets(check_targets(numbers))
    table = render_markdown(figures, all_anchors, machine)
    markdown = bench_dir / "RESULTS.md"
    heading, rest = table.split("\n", 1)
    markdown.write_text(f"{heading}\n\n## Targets\n\n{targets}\n## Figures\n{rest}")
    readme = bench_dir.resolve().parent / "README.md"
    if readme.exists():
        update_readme(readme, machine, targets, table)
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
