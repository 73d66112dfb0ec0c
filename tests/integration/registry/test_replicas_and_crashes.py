"""Several processes, one database: replicas share one log; a SIGKILL loses nothing acknowledged."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from egov.registry.v1 import registry_pb2 as pb
from egov_clients.registry import RegistryClient
from egov_common.errors import EgovError
from egov_pki import merkle
from egov_testing.processes import start_service
from registry_testenv import (
    AGENCY,
    AUDITOR_TOKEN,
    ISSUER_TOKEN,
    StartRegistry,
    all_log_entries,
    digest,
    local_root,
    registry_env,
)


@pytest.mark.postgres
def test_two_registry_processes_on_one_postgresql_keep_one_log(
    postgres_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "shared" / "log-key.pem"
    env = registry_env(postgres_url, key_file)
    with (
        start_service("egov_registry", env, data_dir=tmp_path / "a", http=False) as first,
        start_service("egov_registry", env, data_dir=tmp_path / "b", http=False) as second,
    ):
        log_key = key_file.with_name("log-key.pub.pem").read_bytes()
        addresses = [first.grpc_address, second.grpc_address]

        def run(client_number: int) -> dict[str, str]:
            address = addresses[client_number % 2]
            answers: dict[str, str] = {}
            with RegistryClient(address, log_key=log_key, token=ISSUER_TOKEN) as client:
                for i in range(60):
                    n = client_number * 1000 + i
                    request = client.registration(
                        sha256=digest(f"replica {n}"),
                        issuer=AGENCY,
                        document_type="permit",
                        idempotency_key=f"replica-{n}",
                    )
                    answers[request.idempotency_key] = client.register_request(
                        request
                    ).document.document_id
                    if i % 20 == 0:
                        client.get_signed_tree_head()  # consistency checked against earlier heads
            return answers

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(run, range(8)))
        registered = {doc for answers in results for doc in answers.values()}
        assert len(registered) == 8 * 60

        heads = []
        for address in addresses:
            with RegistryClient(address, log_key=log_key, token=AUDITOR_TOKEN) as auditor:
                heads.append(auditor.get_signed_tree_head())
                entries = all_log_entries(auditor)
                assert [e.leaf_index for e in entries] == list(range(len(registered)))
                assert {e.document_id for e in entries} == registered
                assert local_root([e.leaf_data for e in entries]) == heads[-1].root_hash
                for entry in entries[::7]:
                    auditor.verify_leaf(entry.leaf_index, entry.leaf_data)
        assert heads[0].root_hash == heads[1].root_hash


def test_registrations_acknowledged_before_a_sigkill_survive_exactly_once(
    start_registry: StartRegistry, key_file: Path
) -> None:
    acknowledged: dict[str, tuple[str, pb.RegisterDocumentRequest]] = {}
    lock = threading.Lock()
    enough = threading.Event()
    heads_before_crash: list[merkle.TreeHead] = []

    with start_registry() as doomed:
        log_key = key_file.with_name("log-key.pub.pem").read_bytes()

        def run(client_number: int) -> None:
            with RegistryClient(
                doomed.grpc_address,
                log_key=log_key,
                token=ISSUER_TOKEN,
                max_attempts=1,
                deadline=5,
            ) as client:
                for i in range(100_000):
                    request = client.registration(
                        sha256=digest(f"crash {client_number} {i}"),
                        issuer=AGENCY,
                        document_type="permit",
                        idempotency_key=f"crash-{client_number}-{i}",
                    )
                    try:
                        if i % 3 == 0:
                            document = client.register_many([request])[0]
                            if isinstance(document, EgovError):
                                raise document
                            document_id = document.document.document_id
                        else:
                            document_id = client.register_request(request).document.document_id
                    except EgovError:
                        return  # the server is gone
                    if i % 25 == 0:
                        with contextlib.suppress(EgovError):
                            heads_before_crash.append(client.get_signed_tree_head())
                    with lock:
                        acknowledged[request.idempotency_key] = (document_id, request)
                        if len(acknowledged) >= 150:
                            enough.set()

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(run, n) for n in range(4)]
            assert enough.wait(60)
            doomed.kill()  # SIGKILL while the clients are still registering
            for future in futures:
                future.result()

    with (
        start_registry() as revived,
        RegistryClient(revived.grpc_address, log_key=log_key, token=ISSUER_TOKEN) as client,
        RegistryClient(revived.grpc_address, log_key=log_key, token=AUDITOR_TOKEN) as auditor,
    ):
        head = auditor.get_signed_tree_head()
        entries = all_log_entries(auditor)
        assert [e.leaf_index for e in entries] == list(range(head.tree_size))
        assert local_root([e.leaf_data for e in entries]) == head.root_hash
        in_log = [e.document_id for e in entries]
        assert len(in_log) == len(set(in_log))
        for key, (document_id, request) in acknowledged.items():
            assert in_log.count(document_id) == 1, key
            retry = client.register_request(request)
            assert retry.replayed and retry.document.document_id == document_id
            assert [d.document_id for d in client.lookup_by_hash(request.sha256)] == [document_id]
        # Every head signed before the crash is a prefix of the tree after it.
        assert heads_before_crash
        for old in heads_before_crash:
            client.verify_consistency(old, head)
        # The log still grows consistently after the crash.
        client.register(sha256=digest("after the crash"), issuer=AGENCY, document_type="p")
        client.get_signed_tree_head()
        assert client.trusted_tree_head is not None
        assert client.trusted_tree_head.tree_size == head.tree_size + 1
