"""Load for benchmarks: clients in several processes, each client a thread with its connection.

One Python process driving every client spends a good part of its CPU handing its own GIL from
thread to thread (on two cores, a load generator of 8 threads in one process cost about a
quarter more CPU per call than the same 8 threads in two processes), and that CPU is taken from
the server under test when both share the machine. Real clients are separate processes anyway.

:func:`run_clients` starts ``processes`` fresh interpreters (``spawn``: a fork would inherit the
caller's gRPC state, which does not survive one), each with its share of the clients. Every
client opens its own connection and waits for it to be ready; the clock starts when all are,
and stops when the last has done its work. ``job(channel, items)`` runs in the client's thread
and must be importable by name (a module-level function); it raises to fail the run.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

import grpc

__all__ = ["LoadFailed", "run_clients"]

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
