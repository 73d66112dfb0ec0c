"""The registry's reads outlive the database dropping its connections (a restart, a failover)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.clock import FixedClock
from egov_registry.domain.model import Actor, Registration
from egov_registry.storage.schema import migrate
from egov_registry.storage.store import RegistryStore

AGENCY = "TH-JUR:0994000000014"
ISSUER = Actor("back-office", frozenset({"registry:issue"}), AGENCY)


def test_lookups_after_every_connection_was_dropped_are_answered(
    postgres_url: str, drop_connections: Callable[[], int]
) -> None:
    migrate(postgres_url)
    store = RegistryStore(
        postgres_url, clock=FixedClock(), log_key=ec.generate_private_key(ec.SECP256R1())
    )
    try:
        digest = hashlib.sha256(b"certificate").digest()
        registration = Registration("key-1", "", digest, AGENCY, "permit", "", (), None, None, {})
        (outcome,) = store.register(ISSUER, [registration])
        document_id = outcome.document.document_id  # type: ignore[union-attr]
        assert store.get(document_id).sha256 == digest  # a read connection is kept now
        assert drop_connections() >= 1
        for _ in range(3):  # the kept connection is dead: replaced, not reported
            assert store.get(document_id).sha256 == digest
            assert [d.document_id for d in store.lookup_by_hash(digest)] == [document_id]
    finally:
        store.close()
