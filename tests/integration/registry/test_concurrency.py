"""8 clients registering 2,000 documents in parallel, retrying the same keys: one clean log."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from egov.registry.v1 import registry_pb2 as pb
from egov_clients.registry import RegistryClient
from egov_pki import merkle
from egov_testing.processes import ServiceProcess
from registry_testenv import (
    AGENCY,
    AUDITOR_TOKEN,
    ISSUER_TOKEN,
    all_log_entries,
    digest,
    local_root,
)

CLIENTS = 8
DOCUMENTS = 2_000
BATCH = 25


def test_parallel_registrations_with_retries_keep_one_consistent_log(
    registry: ServiceProcess, log_key: bytes
) -> None:
    requests = [
        RegistryClient.registration(
            sha256=digest(f"document {i}"),
            issuer=AGENCY,
            document_type="permit",
            idempotency_key=f"key-{i}",
        )
        for i in range(DOCUMENTS)
    ]
    share = [requests[c::CLIENTS] for c in range(CLIENTS)]

    def run(client_number: int) -> tuple[dict[str, str], list[merkle.TreeHead]]:
        answers: dict[str, str] = {}
        heads: list[merkle.TreeHead] = []
        mine, neighbours = share[client_number], share[(client_number + 1) % CLIENTS]
        with RegistryClient(registry.grpc_address, log_key=log_key, token=ISSUER_TOKEN) as client:
            for request in mine[:5]:  # some one at a time
                answers[request.idempotency_key] = client.register_request(
                    request
                ).document.document_id
            for start in range(5, len(mine), BATCH):
                batch = mine[start : start + BATCH]
                # Each batch is sent twice (a retry after a lost answer) and races with the
                # neighbour's retry of the same keys.
                for attempt in (batch, batch, neighbours[start : start + BATCH]):
                    for request, result in zip(attempt, client.register_many(attempt), strict=True):
                        assert isinstance(result, pb.RegisterDocumentResponse), result
                        previous = answers.setdefault(
                            request.idempotency_key, result.document.document_id
                        )
                        assert previous == result.document.document_id
                heads.append(client.get_signed_tree_head())
        return answers, heads

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(run, range(CLIENTS)))

    document_for_key: dict[str, str] = {}
    for answers, _ in outcomes:
        for key, document_id in answers.items():
            assert document_for_key.setdefault(key, document_id) == document_id
    assert len(document_for_key) == DOCUMENTS
    assert len(set(document_for_key.values())) == DOCUMENTS

    with RegistryClient(registry.grpc_address, log_key=log_key, token=AUDITOR_TOKEN) as auditor:
        final = auditor.get_signed_tree_head()
        assert final.tree_size == DOCUMENTS
        entries = all_log_entries(auditor)
        assert [e.leaf_index for e in entries] == list(range(DOCUMENTS))
        assert {e.document_id for e in entries} == set(document_for_key.values())
        assert local_root([e.leaf_data for e in entries]) == final.root_hash

        listed: set[str] = set()
        token = ""
        while True:
            page = auditor.list_documents(pb.ListDocumentsRequest(page_size=500, page_token=token))
            listed.update(d.document_id for d in page.documents)
            token = page.next_page_token
            if not token:
                break
        assert listed == set(document_for_key.values())

        def prove(entry: pb.LogEntry) -> None:
            auditor.verify_leaf(entry.leaf_index, entry.leaf_data, final.tree_size)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(prove, entries))

        earlier = [head for _, heads in outcomes for head in heads]
        for old in random.Random(4).sample(earlier, 20):
            auditor.verify_consistency(old, final)
