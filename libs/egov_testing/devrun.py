"""``python -m egov_testing.devrun`` (``make run``): every service as its own process on loopback.

Starts each service whose package has a ``__main__`` module (identity, keys, registry, signing,
verify portal; those not written yet are simply absent) on the default ports of DESIGN.md with
one shared data directory (``.data/<service>``, dev service CA in ``.data/service-ca``), tells
each where its peers are (``EGOV_<PEER>_ADDRESS``), waits for health, prints the addresses and
stops them all cleanly on Ctrl-C or SIGTERM. Logs: ``.data/logs/<service>.log``.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from egov_common.settings import DEFAULT_PORTS

from egov_testing.processes import ServiceFailedToStart, ServiceProcess

__all__ = ["available_services", "main", "plan"]

#: Start order: a service's peers come before it.
ORDER = ("IDENTITY", "KEYS", "REGISTRY", "SIGNING", "VERIFY_PORTAL")


def available_services() -> list[str]:
    """Names (``"REGISTRY"``) of the services that can be started with ``python -m``."""
    found = []
    for name in ORDER:
        try:
            spec = importlib.util.find_spec(f"egov_{name.lower()}.__main__")
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            found.append(name)
    return found


def plan(
    names: Sequence[str], data_dir: Path, *, tls: bool = False, host: str = "127.0.0.1"
) -> list[ServiceProcess]:
    """One :class:`ServiceProcess` per service on its default ports, peers wired together."""
    peers = {
        f"EGOV_{name}_ADDRESS": f"{host}:{DEFAULT_PORTS[name][0]}"
        for name in names
        if DEFAULT_PORTS[name][0] is not None
    }
    common = dict(peers)
    processes = []
    for name in names:
        grpc_port, http_port = DEFAULT_PORTS[name]
        env = dict(common)
        if tls:
            env[f"EGOV_{name}_TLS_MODE"] = "mtls"
            env[f"EGOV_{name}_TLS_CA_DIR"] = str(data_dir / "service-ca")
        module = f"egov_{name.lower()}"
        processes.append(
            ServiceProcess(
                module=module,
                name=name,
                data_dir=data_dir / name.lower(),
                log_path=data_dir / "logs" / f"{name.lower()}.log",
                grpc_port=grpc_port,
                http_port=http_port,
                env=env,
                host=host,
            )
        )
    return processes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m egov_testing.devrun", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"), help="shared data dir")
    parser.add_argument("--tls", action="store_true", help="mutual TLS from the dev service CA")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to become healthy")
    parser.add_argument(
        "services", nargs="*", help="subset to start (identity keys registry signing ...)"
    )
    args = parser.parse_args(argv)

    available = available_services()
    wanted = [s.upper() for s in args.services] or available
    missing = [s for s in wanted if s not in available]
    if missing:
        parser.error(f"not startable (no __main__ module): {', '.join(missing).lower()}")
    if not wanted:
        print("no service has a __main__ module yet; nothing to run", file=sys.stderr)
        return 1

    data_dir = args.data_dir.resolve()
    processes = plan(wanted, data_dir, tls=args.tls)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    started: list[ServiceProcess] = []
    try:
        for process in processes:
            process.start()
            started.append(process)
        for process in processes:
            process.wait_healthy(args.timeout)
            print(_describe(process), flush=True)
        print(f"all up; data in {data_dir}, logs in {data_dir / 'logs'}; Ctrl-C stops", flush=True)
        while not stop.wait(0.5):
            for process in started:
                if process.returncode is not None:
                    print(f"{process.name.lower()} exited with {process.returncode}; stopping")
                    print(process.log_tail(), file=sys.stderr)
                    return 1
        return 0
    except ServiceFailedToStart as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for process in reversed(started):
            code = process.stop()
            print(f"{process.name.lower()} stopped ({code})", flush=True)


def _describe(process: ServiceProcess) -> str:
    parts = [f"{process.name.lower():<14}"]
    if process.grpc_port is not None:
        parts.append(f"grpc {process.grpc_address}")
    if process.http_port is not None:
        parts.append(f"http {process.http_url}")
    return "  ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
