"""Load for benchmarks: Python clients in several processes, or h2load and grpc_replay for a
server's capacity.

One Python process driving every client spends a good part of its CPU handing its own GIL from
thread to thread (on two cores, a load generator of 8 threads in one process cost about a
quarter more CPU per call than the same 8 threads in two processes), and that CPU is taken from
the server under test when both share the machine. Real clients are separate processes anyway.

:func:`run_clients` starts ``processes`` fresh interpreters (``spawn``: a fork would inherit the
caller's gRPC state, which does not survive one), each with its share of the clients. Every
client opens its own connection and waits for it to be ready; the clock starts when all are,
and stops when the last has done its work. ``job(channel, items)`` runs in the client's thread
and must be importable by name (a module-level function); it raises to fail the run.

A Python gRPC client costs about as much CPU per call as the Python server it calls, so on a
small machine Python clients measure themselves as much as the server. :func:`h2load_unary`
drives the same kind of load (each connection one call at a time) from nghttp2's ``h2load``, a
C load generator that takes a few percent of a core, to measure what the server can serve.
h2load sends one message again and again; :func:`replay_unary` sends a different one each call
(a registration is made once), from ``grpc_replay`` (``grpc_replay.cc`` beside this module, a
small C++ client on Debian's libgrpc++, built on first use).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import queue
import re
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import grpc

__all__ = ["LoadFailed", "LoadRun", "h2load_unary", "replay_program", "replay_unary", "run_clients"]

Job = Callable[[grpc.Channel, list[Any]], None]


class LoadFailed(RuntimeError):
    """A client's job raised; the message ends with its traceback."""


def run_clients(
    job: Job,
    address: str,
    shares: Sequence[list[Any]],
    *,
    processes: int = 2,
    timeout: float = 600.0,
    connect_timeout: float = 30.0,
) -> float:
    """Run ``job(channel, share)`` for every share, each share a client; the seconds it took.

    Shares go round-robin to ``processes`` processes (fewer if there are fewer shares).
    Raises :class:`LoadFailed` when a job raised, a client could not connect within
    ``connect_timeout`` seconds, or a process did not report within ``timeout``.
    """
    processes = max(1, min(processes, len(shares)))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_client_process,
            args=(job, address, list(shares[number::processes]), barrier, results, connect_timeout),
            daemon=True,
        )
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    failures: list[str] = []
    try:
        try:
            barrier.wait(timeout)  # every connection is ready
        except threading.BrokenBarrierError:  # a process could not start its clients
            failures.append(results.get(timeout=30)[1])
            raise LoadFailed("a client failed:\n" + "\n".join(failures)) from None
        started = time.perf_counter()
        for _ in workers:
            outcome, detail = results.get(timeout=timeout)
            if outcome != "ok":
                failures.append(detail)
        elapsed = time.perf_counter() - started
    except queue.Empty as exc:
        raise LoadFailed("a load process did not report in time") from exc
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    if failures:
        raise LoadFailed("a client failed:\n" + "\n".join(failures))
    return elapsed


def _client_process(
    job: Job,
    address: str,
    shares: list[list[Any]],
    barrier: Barrier,
    results: Any,
    connect_timeout: float,
) -> None:
    channels = [
        # A connection of its own (within a process grpc shares one per address otherwise).
        grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in shares
    ]
    errors: list[str] = []
    try:
        try:
            for channel in channels:
                grpc.channel_ready_future(channel).result(timeout=connect_timeout)
        except BaseException:
            barrier.abort()  # the others need not wait for this process
            raise
        barrier.wait(60)

        def client(channel: grpc.Channel, share: list[Any]) -> None:
            try:
                job(channel, share)
            except BaseException:
                errors.append(traceback.format_exc())

        threads = [
            threading.Thread(target=client, args=(channel, share))
            for channel, share in zip(channels, shares, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        errors.append(traceback.format_exc())
    finally:
        for channel in channels:
            channel.close()
    results.put(("failed", "\n".join(errors)) if errors else ("ok", ""))


@dataclass(frozen=True, slots=True)
class LoadRun:
    """What one run of a C or C++ load generator (:func:`h2load_unary`, :func:`replay_unary`)
    measured."""

    calls: int
    seconds: float
    mean_latency_ms: float
    #: The load generator's own CPU time, where it reports it (grpc_replay does).
    client_cpu_seconds: float | None = None

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds


_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def h2load_unary(
    address: str,
    method: str,
    request: bytes,
    response: bytes,
    *,
    calls: int,
    connections: int,
    metadata: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> LoadRun:
    """Send ``calls`` identical unary gRPC calls to ``address`` (plaintext HTTP/2) with h2load:
    ``connections`` connections, each with one call at a time.

    ``method`` is ``/package.Service/Method``; ``request`` the serialized request message and
    ``response`` the serialized response the server gives it (make the call once with a gRPC
    client first). h2load sees HTTP statuses, not gRPC ones, so the run is checked by its
    bytes: every call must have returned exactly ``response`` in its length-prefixed frame (a
    failed gRPC call has no message). Raises :class:`LoadFailed` otherwise or past ``timeout``, and
    FileNotFoundError when h2load (Debian's nghttp2-client) is not installed.
    """
    program = shutil.which("h2load")
    if program is None:
        raise FileNotFoundError("h2load is not installed (Debian package nghttp2-client)")
    headers = {"content-type": "application/grpc", "te": "trailers", **(metadata or {})}
    with tempfile.TemporaryDirectory(prefix="h2load-") as scratch:
        body = Path(scratch) / "request"
        body.write_bytes(_grpc_frame(request))
        command = [program, "-n", str(calls), "-c", str(connections), "-m", "1", "-t", "1"]
        command += ["-d", str(body)]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        command.append(f"http://{address}{method}")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LoadFailed(f"h2load did not finish within {timeout:g} s") from exc
    out = done.stdout
    if done.returncode != 0:
        raise LoadFailed(f"h2load exited with {done.returncode}:\n{out}{done.stderr}")
    counts = _h2load_counts(out)
    expected_bytes = calls * len(_grpc_frame(response))
    if counts["succeeded"] != calls or counts["2xx"] != calls or counts["data"] != expected_bytes:
        raise LoadFailed(
            f"h2load: {counts}, expected {calls} calls answered with {expected_bytes} bytes of "
            f"messages in all:\n{out}"
        )
    finished = re.search(r"^finished in ([\d.]+)(s|ms|us),", out, re.MULTILINE)
    latency = re.search(r"^time for request:\s+\S+\s+\S+\s+([\d.]+)(s|ms|us)\s", out, re.MULTILINE)
    if finished is None or latency is None:
        raise LoadFailed(f"h2load's report was not understood:\n{out}")
    return LoadRun(
        calls=calls,
        seconds=float(finished[1]) * _UNITS[finished[2]],
        mean_latency_ms=float(latency[1]) * _UNITS[latency[2]] * 1000,
    )


def replay_unary(
    address: str,
    method: str,
    requests: Sequence[bytes],
    *,
    connections: int,
    metadata: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> LoadRun:
    """Send each of ``requests`` (serialized messages) once to ``address`` (plaintext) as a
    unary call of ``method``, from ``connections`` connections with one call at a time each,
    with ``grpc_replay``: the load of :func:`h2load_unary` where every call must differ (a
    registration is made once), from a C++ client (Debian's libgrpc++) that takes little CPU.
    ``metadata`` names are lower case, as gRPC's are.

    Every call must succeed: raises :class:`LoadFailed` naming the first that did not, or past
    ``timeout``; FileNotFoundError when the client cannot be built here (g++, pkg-config and
    libgrpc++-dev missing). :func:`replay_program` builds it ahead, outside a timed window.
    """
    headers = dict(metadata or {})
    upper = [name for name in headers if name != name.lower()]
    if upper:
        raise ValueError(f"gRPC metadata names are lower case: {upper}")
    program = replay_program()
    with tempfile.TemporaryDirectory(prefix="grpc-replay-") as scratch:
        frames = Path(scratch) / "requests"
        frames.write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in requests))
        command = [str(program), address, method, str(frames), str(connections)]
        for name, value in headers.items():
            command += [name, value]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LoadFailed(f"grpc_replay did not finish within {timeout:g} s") from exc
    if done.returncode not in (0, 4):  # 4: calls failed, as its report says
        raise LoadFailed(f"grpc_replay exited with {done.returncode}:\n{done.stderr}")
    report = json.loads(done.stdout)
    if done.returncode != 0 or report["calls"] != len(requests) or report["failed"]:
        raise LoadFailed(
            f"grpc_replay: {report['failed']} of {report['calls']} calls failed "
            f"(of {len(requests)} to send), the first: {report['first_error']}"
        )
    return LoadRun(
        calls=report["calls"],
        seconds=report["seconds"],
        mean_latency_ms=report["mean_latency_ms"],
        client_cpu_seconds=report["cpu_seconds"],
    )


_REPLAY_SOURCE = Path(__file__).with_name("grpc_replay.cc")
_replay_lock = threading.Lock()
_replay_built: Path | None = None  # this process's, once found or built


def replay_program() -> Path:
    """``grpc_replay``, built on first use and kept for this version of its source, compiler
    and libgrpc++, in a folder of this user's only (``<tmp>/egov-grpc-replay-<uid>``, 0700: a
    program another user could have put there is never run).

    Raises FileNotFoundError when g++, pkg-config or libgrpc++-dev is missing, and
    :class:`LoadFailed` when the folder is not this user's alone or the build fails.
    """
    global _replay_built
    if _replay_built is not None and _replay_built.exists():
        return _replay_built  # not three more processes (pkg-config, g++) for every run
    compiler, pkg_config = shutil.which("g++"), shutil.which("pkg-config")

    def grpc_package(*options: str) -> str | None:
        assert pkg_config is not None
        found = subprocess.run([pkg_config, *options, "grpc++"], capture_output=True, text=True,
                               check=False, timeout=60)
        return found.stdout.strip() if found.returncode == 0 else None

    version = grpc_package("--modversion") if pkg_config is not None else None
    flags = grpc_package("--cflags", "--libs") if version is not None else None
    if compiler is None or version is None or flags is None:
        raise FileNotFoundError(
            "grpc_replay cannot be built: it needs g++, pkg-config and libgrpc++-dev "
            "(Debian packages; .ci/install-system-packages)"
        )
    compiler_version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    build = hashlib.sha256(
        b"\0".join(
            part.encode() if isinstance(part, str) else part
            for part in (_REPLAY_SOURCE.read_bytes(), version, flags, compiler_version)
        )
    ).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"egov-grpc-replay-{os.getuid()}"
    with _replay_lock:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise LoadFailed(f"{folder} is not a folder of this user's alone: not run from there")
        program = folder / f"grpc_replay-{build}"
        _remove_unused_builds(folder, keep=program)
        if program.exists():
            os.utime(program)  # in use: not removed as unused by another checkout
            _replay_built = program
            return program
        building = folder / f"{program.name}.{os.getpid()}.tmp"
        try:
            done = subprocess.run(
                [compiler, "-O2", "-std=c++17", "-o", str(building), str(_REPLAY_SOURCE),
                 *flags.split()],
                capture_output=True, text=True, timeout=300, check=False,
            )
            if done.returncode != 0:
                raise LoadFailed(f"grpc_replay did not build:\n{done.stderr[-3000:]}")
            os.replace(building, program)  # whole, or not there: another process may build too
        except subprocess.TimeoutExpired as exc:
            raise LoadFailed("grpc_replay did not build within 300 s") from exc
        finally:
            building.unlink(missing_ok=True)
        _replay_built = program
    return program


#: A build of another version of grpc_replay (another checkout's) not used for this long is
#: removed when this one is looked for.
_UNUSED_BUILD_SECONDS = 7 * 24 * 3600


def _remove_unused_builds(folder: Path, *, keep: Path) -> None:
    cutoff = time.time() - _UNUSED_BUILD_SECONDS
    for other in folder.glob("grpc_replay-*"):
        if other == keep:
            continue
        with contextlib.suppress(FileNotFoundError):  # another process's cleaning came first
            if other.lstat().st_mtime < cutoff:
                other.unlink()


def _grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message, uncompressed."""
    return b"\0" + struct.pack(">I", len(message)) + message


def _h2load_counts(report: str) -> dict[str, int]:
    """Calls succeeded, 2xx statuses and bytes of DATA received, from h2load's report."""
    patterns = {
        "succeeded": r"^requests: .*?(\d+) succeeded",
        "2xx": r"^status codes: (\d+) 2xx",
        "data": r"^traffic: .*\((\d+)\) data",
    }
    counts: dict[str, int] = {}
    for name, pattern in patterns.items():
        found = re.search(pattern, report, re.MULTILINE)
        counts[name] = int(found[1]) if found else -1
    return counts
