"""Identity benchmark (``make bench``; never collected by ``make test``).

Token grants/s against real ``python -m egov_identity`` processes over gRPC and over HTTP:
client credentials (private_key_jwt), refresh (rotation), authorization-code exchanges. Ways of
serving, on one SQLite database unless named:

- ``1_process``: one process;
- ``2_process``: two separate processes on their own ports (two pods behind a Service, as
  Kubernetes runs identity: one process per pod), each client thread on one of them;
- ``2_workers``: one service with ``EGOV_IDENTITY_PROCESSES=2`` (two forked workers sharing its
  ports, the kernel spreading connections over them);
- ``2_process_postgresql``: as ``2_process`` on PostgreSQL, as deployed (only when
  EGOV_TEST_POSTGRES_URL is set; the database server's own CPU is not counted in the
  per-CPU figures, but it shares the cores).

Every client thread has connections of its own, as separate clients would. Plus ID-token
verifications/s in the shared verifier (egov_pki.tokens), of tokens it has not seen and of
tokens presented again (which it remembers). Figures go to
bench/results-identity.json, with grants per second of server CPU (``grants_per_server_cpu_
second_...``): the load generator runs on the same cores, so the rates are pessimistic, and
the per-CPU figure is the server's capacity. Target (issue 6): >= 1,200 refresh or
client-credentials grants/s on a 2-core machine.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from egov.identity.v1 import oidc_pb2
from egov_clients.identity import IdentityClient, MachineKey, pkce_pair
from egov_identity.adapters.population import SyntheticPopulation
from egov_pki.tokens import StaticJwks, TokenVerifier
from egov_testing.processes import ServiceProcess, free_port, start_service

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results-identity.json"
THREADS = 8
REQUESTS = int(os.environ.get("EGOV_BENCH_IDENTITY_REQUESTS", "1200"))
ADMIN = "bench-admin"
PORTAL = "bench-portal"
MACHINE = "bench-agency"
REDIRECT = "http://127.0.0.1/cb"
# Passes the password policy: not breached, and not containing the login name ("bench").
PASSWORD = "lantern-" + secrets.token_urlsafe(12)
#: configuration -> (separate processes, workers per process, PostgreSQL)
SERVING = {"1_process": (1, 1, False), "2_process": (2, 1, False), "2_workers": (1, 2, False),
           "2_process_postgresql": (2, 1, True)}

_results: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def write_results() -> Iterator[None]:
    yield
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update(_results)
    previous["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()}
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")


@dataclass
class _Load:
    """Runs work on THREADS client threads (the same ones for every measurement); each thread
    has connections of its own."""

    procs: list[ServiceProcess]  # their CPU (forked workers included) is the server's
    #: thread slot -> its gRPC channel, gRPC client and HTTP client
    connect: Callable[[int], tuple[grpc.Channel, IdentityClient, httpx.Client]]
    per_cpu: dict[str, float]

    def __post_init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[tuple[grpc.Channel, IdentityClient, httpx.Client]] = []
        self._pool = ThreadPoolExecutor(THREADS)

    def _server_cpu(self) -> float:
        return sum(proc.cpu_seconds() for proc in self.procs)

    def own(self) -> tuple[IdentityClient, httpx.Client]:
        """This thread's gRPC client and HTTP client (opened on its first request)."""
        mine = getattr(self._local, "clients", None)
        if mine is None:
            with self._lock:
                opened = self.connect(len(self._opened))
                self._opened.append(opened)
            mine = self._local.clients = (opened[1], opened[2])
        return mine

    def rate(self, work: Callable[[int], None], n: int = REQUESTS, name: str = "") -> float:
        """Requests/s end to end; also records grants per server CPU-second (``per_cpu``)."""
        list(self._pool.map(work, range(THREADS * 2)))  # warm-up: connections, caches
        cpu = self._server_cpu()
        start = time.perf_counter()
        list(self._pool.map(work, range(n)))
        rate = n / (time.perf_counter() - start)
        used = self._server_cpu() - cpu
        if name:
            self.per_cpu[name] = n / used if used > 0 else float("inf")
        return rate

    def close(self) -> None:
        self._pool.shutdown()
        for channel, _, http in self._opened:
            channel.close()
            http.close()


@contextlib.contextmanager
def _serving(tmp: Path, processes: int, workers: int, admin: MachineKey, machine: MachineKey,
             database_url: str = "") -> Iterator[list[ServiceProcess]]:
    bootstrap = tmp / "clients.json"
    bootstrap.write_text(json.dumps([
        {"client_id": ADMIN, "grant_types": ["client_credentials"],
         "scopes": ["identity:admin", "identity:proofing"],
         "token_endpoint_auth_method": "private_key_jwt", "jwks_json": admin.jwks_json},
        {"client_id": MACHINE, "grant_types": ["client_credentials"],
         "scopes": ["registry:issue", "keys:seal"], "agency": "TH-JUR:0994000165510",
         "token_endpoint_auth_method": "private_key_jwt", "jwks_json": machine.jwks_json},
        {"client_id": PORTAL, "grant_types": ["authorization_code", "refresh_token"],
         "scopes": ["openid", "profile"], "redirect_uris": [REDIRECT]},
    ]))
    issuer_port = free_port()
    env = {
        "EGOV_IDENTITY_KEK": base64.b64encode(secrets.token_bytes(32)).decode(),
        "EGOV_IDENTITY_DATABASE_URL": database_url or f"sqlite:///{tmp / 'identity.db'}",
        "EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE": str(bootstrap),
        "EGOV_IDENTITY_ISSUER": f"http://127.0.0.1:{issuer_port}",
        "EGOV_IDENTITY_POPULATION_SIZE": "20", "EGOV_IDENTITY_POPULATION_SEED": "7",
        "EGOV_IDENTITY_LOG_LEVEL": "WARNING",
        "EGOV_IDENTITY_PROCESSES": str(workers),
    }
    with contextlib.ExitStack() as stack:
        procs = []
        for i in range(processes):
            (tmp / f"p{i}").mkdir(exist_ok=True)
            procs.append(stack.enter_context(start_service(
                "egov_identity", env=env, data_dir=tmp / f"p{i}")))
        yield procs


def _enrol(client: IdentityClient, admin: MachineKey) -> str:
    token = client.client_credentials_token(ADMIN, admin, "identity:proofing")
    citizen = next(p for p in SyntheticPopulation(7, 20).people
                   if p.identifier.startswith("TH-PID"))
    person_id, code = client.proof_citizen(token, citizen)
    from egov.identity.v1 import authentication_pb2 as auth_pb
    username = "bench"
    client.call(client.authn.SetPassword, auth_pb.SetPasswordRequest(
        person_id=person_id, enrolment_code=code, new_password=PASSWORD, username=username))
    return username


@pytest.mark.parametrize("serving", list(SERVING))
def test_token_grants_per_second(serving: str, tmp_path: Path,
                                 request: pytest.FixtureRequest) -> None:
    processes, workers, postgresql = SERVING[serving]
    database_url = str(request.getfixturevalue("postgres_url")) if postgresql else ""
    admin, machine = MachineKey(), MachineKey()
    with _serving(tmp_path, processes, workers, admin, machine, database_url) as procs:
        issuer = httpx.get(procs[0].http_url + "/.well-known/openid-configuration"
                           ).json()["issuer"]

        def connect(slot: int) -> tuple[grpc.Channel, IdentityClient, httpx.Client]:
            proc = procs[slot % len(procs)]
            # A connection of its own (grpc shares one per address within a process otherwise).
            channel = grpc.insecure_channel(
                proc.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)])
            return (channel, IdentityClient(channel, issuer=issuer),
                    httpx.Client(base_url=proc.http_url))

        setup_channel = grpc.insecure_channel(procs[0].grpc_address)
        setup = IdentityClient(setup_channel, issuer=issuer)
        username = _enrol(setup, admin)
        load = _Load(procs, connect, {})
        out: dict[str, float] = {}

        def cc_grpc(_: int) -> None:
            load.own()[0].client_credentials_token(MACHINE, machine, "registry:issue")

        def cc_http(_: int) -> None:
            r = load.own()[1].post("/token", data={
                "grant_type": "client_credentials", "client_id": MACHINE, "scope": "keys:seal",
                "client_assertion_type":
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": machine.assertion(MACHINE, issuer + "/token")})
            assert r.status_code == 200, r.text

        out["client_credentials_grpc"] = load.rate(cc_grpc, name="client_credentials_grpc")
        out["client_credentials_http"] = load.rate(cc_http, name="client_credentials_http")

        # Refresh chains, one per thread slot (rotation makes each token single use).
        chains = [setup.login_and_get_tokens(
            PORTAL, REDIRECT, username, PASSWORD, totp_secret=None, scope="openid profile",
            acr_values="").refresh_token for _ in range(THREADS)]
        slots = list(range(THREADS))
        lock = threading.Lock()

        def refresh(http: bool) -> None:
            with lock:
                slot = slots.pop()
            try:
                client, session = load.own()
                if http:
                    r = session.post("/token", data={
                        "grant_type": "refresh_token", "client_id": PORTAL,
                        "refresh_token": chains[slot]})
                    assert r.status_code == 200, r.text
                    chains[slot] = r.json()["refresh_token"]
                else:
                    chains[slot] = client.refresh(PORTAL, chains[slot]).refresh_token
            finally:
                with lock:
                    slots.append(slot)

        out["refresh_grpc"] = load.rate(lambda _: refresh(False), name="refresh_grpc")
        out["refresh_http"] = load.rate(lambda _: refresh(True), name="refresh_http")

        # Code exchanges: codes minted first (not timed), then redeemed.
        from egov.identity.v1 import authentication_pb2 as auth_pb
        login = setup.call(setup.authn.Login, auth_pb.LoginRequest(
            client_id=PORTAL, username=username, password=PASSWORD))

        def mint(n: int) -> list[tuple[str, str]]:
            codes = []
            for _ in range(n):
                verifier, challenge = pkce_pair()
                auth = setup.call(setup.oidc.Authorize, oidc_pb2.AuthorizeRequest(
                    login_session_id=login.login_session_id, client_id=PORTAL,
                    redirect_uri=REDIRECT, scope="openid profile", code_challenge=challenge,
                    code_challenge_method="S256"))
                codes.append((auth.code, verifier))
            return codes

        exchanges = max(REQUESTS // 4, 100)
        codes = mint(exchanges + THREADS * 2)

        def exchange_grpc(_: int) -> None:
            code, verifier = codes.pop()
            load.own()[0].redeem_code(PORTAL, code, REDIRECT, verifier)

        out["code_exchange_grpc"] = load.rate(exchange_grpc, n=exchanges,
                                              name="code_exchange_grpc")
        codes = mint(exchanges + THREADS * 2)

        def exchange_http(_: int) -> None:
            code, verifier = codes.pop()
            r = load.own()[1].post("/token", data={
                "grant_type": "authorization_code", "client_id": PORTAL, "code": code,
                "redirect_uri": REDIRECT, "code_verifier": verifier})
            assert r.status_code == 200, r.text

        out["code_exchange_http"] = load.rate(exchange_http, n=exchanges,
                                              name="code_exchange_http")
        load.close()
        setup_channel.close()
    _results[f"grants_per_second_{serving}"] = {k: round(v, 1) for k, v in out.items()}
    _results[f"grants_per_server_cpu_second_{serving}"] = {
        k: round(v, 1) for k, v in load.per_cpu.items()}


def test_id_token_verifications_per_second() -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k", alg="ES256", use="sig")
    verifier = TokenVerifier(StaticJwks({"keys": [jwk]}), issuer="https://id", audiences=["p"])
    now = int(time.time())
    n = 3000
    tokens = [jwt.encode({"iss": "https://id", "sub": "s", "aud": "p", "iat": now,
                          "exp": now + 300, "acr": "urn:egov:aal:2", "jti": str(i)}, key,
                         algorithm="ES256", headers={"kid": "k"}) for i in range(n)]
    start = time.perf_counter()
    for token in tokens:  # each seen for the first time: the signature and every claim checked
        verifier.verify(token)
    _results["id_token_verifications_per_second_1_thread"] = round(
        n / (time.perf_counter() - start), 1)
    start = time.perf_counter()
    for token in tokens:  # each presented again: remembered, only its key and dates checked
        verifier.verify(token)
    _results["remembered_token_verifications_per_second_1_thread"] = round(
        n / (time.perf_counter() - start), 1)
