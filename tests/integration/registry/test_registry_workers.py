"""EGOV_REGISTRY_PROCESSES=2: two worker processes on one port append to one clean log."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from egov.registry.v1 import registry_pb2 as pb
from egov_clients.registry import RegistryClient
from registry_testenv import (
    AGENCY,
    AUDITOR_TOKEN,
    ISSUER_TOKEN,
    StartRegistry,
    all_log_entries,
    digest,
    local_root,
)

CLIENTS = 8
PER_CLIENT = 40


def _own_connection(address: str) -> grpc.Channel:
    # Each client its own TCP connection, so the kernel spreads them over both workers.
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def test_two_workers_share_one_log(start_registry: StartRegistry, key_file: Path) -> None:
    with start_registry(EGOV_REGISTRY_PROCESSES="2") as registry:
        log_key = key_file.with_name("log-key.pub.pem").read_bytes()

        def run(number: int) -> list[pb.Document]:
            channel = _own_connection(registry.grpc_address)
            with channel, RegistryClient(channel, log_key=log_key, token=ISSUER_TOKEN) as client:
                documents = [
                    client.register(
                        sha256=digest(f"client {number} document {i}"),
                        issuer=AGENCY,
                        document_type="permit",
                        idempotency_key=f"c{number}-{i}",
                    )
                    for i in range(PER_CLIENT)
                ]
                client.verify_document(documents[-1].document_id)
                return documents

        with ThreadPoolExecutor(CLIENTS) as pool:
            documents = [d for share in pool.map(run, range(CLIENTS)) for d in share]

        with RegistryClient(registry.grpc_address, log_key=log_key, token=AUDITOR_TOKEN) as client:
            head = client.get_signed_tree_head()
            assert head.tree_size == CLIENTS * PER_CLIENT
            leaves = sorted(d.history[0].leaf_index for d in documents)
            assert leaves == list(range(CLIENTS * PER_CLIENT))  # no index given twice
            entries = all_log_entries(client)
            assert local_root([e.leaf_data for e in entries]) == head.root_hash  # type: ignore[attr-defined]
            for document in documents[:: CLIENTS * 4]:
                client.verify_document(document.document_id)
        assert registry.stop() == 0
