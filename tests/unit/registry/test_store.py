"""The store on a real SQLite file with a fixed clock: reservations, history, group commit."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.clock import FixedClock
from egov_common.errors import FailedPrecondition, InvalidArgument
from egov_pki import merkle
from egov_pki.identifiers import check_digit
from egov_registry.domain.model import Actor, DocumentStatus, Registration, RevocationReason
from egov_registry.storage import store as store_module
from egov_registry.storage.schema import migrate
from egov_registry.storage.store import RegistryStore

AGENCY = "TH-JUR:0994000000014"
OTHER = "TH-JUR:099400000002" + str(check_digit("099400000002"))
ISSUER = Actor("back-office", frozenset({"registry:issue"}), AGENCY)
OTHER_ISSUER = Actor("other", frozenset({"registry:issue"}), OTHER)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store(sqlite_url: str, clock: FixedClock) -> RegistryStore:
    migrate(sqlite_url)
    store = RegistryStore(
        sqlite_url,
        clock=clock,
        log_key=ec.generate_private_key(ec.SECP256R1()),
        reservation_ttl_ms=60_000,
    )
    yield store  # type: ignore[misc]
    store.close()


def _registration(n: int, document_id: str = "", issuer: str = AGENCY) -> Registration:
    return Registration(
        f"key-{n}",
        document_id,
        hashlib.sha256(str(n).encode()).digest(),
        issuer,
        "permit",
        "",
        (),
        None,
        None,
        {},
    )


def _register(store: RegistryStore, actor: Actor, registration: Registration) -> object:
    (outcome,) = store.register(actor, [registration])
    return outcome


def test_reservation_is_usable_until_it_expires(store: RegistryStore, clock: FixedClock) -> None:
    fresh = store.reserve(ISSUER, AGENCY, "permit")
    stale = store.reserve(ISSUER, AGENCY, "permit")
    clock.advance(30)
    registered = _register(store, ISSUER, _registration(1, fresh.document_id))
    assert registered.document.document_id == fresh.document_id  # type: ignore[attr-defined]
    clock.advance(31)
    expired = _register(store, ISSUER, _registration(2, stale.document_id))
    assert isinstance(expired, FailedPrecondition) and expired.reason == "RESERVATION_EXPIRED"
    reused = _register(store, ISSUER, _registration(3, fresh.document_id))
    assert isinstance(reused, FailedPrecondition) and reused.reason == "RESERVATION_USED"
    assert store.tree_size() == 1


def test_reservation_of_another_issuer_cannot_be_used(store: RegistryStore) -> None:
    theirs = store.reserve(OTHER_ISSUER, OTHER, "permit")
    refused = _register(store, ISSUER, _registration(1, theirs.document_id))
    assert isinstance(refused, FailedPrecondition)
    assert refused.reason == "RESERVATION_OTHER_ISSUER"


def test_reservation_for_another_document_type_cannot_be_used(store: RegistryStore) -> None:
    reserved = store.reserve(ISSUER, AGENCY, "birth-certificate")
    refused = _register(store, ISSUER, _registration(1, reserved.document_id))  # a "permit"
    assert isinstance(refused, FailedPrecondition)
    assert refused.reason == "RESERVATION_OTHER_TYPE"
    assert store.tree_size() == 0


def test_validity_without_a_start_must_end_after_the_registration(
    store: RegistryStore, clock: FixedClock
) -> None:
    now_ms = int(clock.now().timestamp() * 1000)
    ended = _register(store, ISSUER, replace(_registration(1), valid_until_ms=now_ms - 1))
    assert isinstance(ended, InvalidArgument) and ended.reason == "VALIDITY_INVALID"
    assert store.tree_size() == 0
    later = _register(store, ISSUER, replace(_registration(2), valid_until_ms=now_ms + 1))
    assert later.document.valid_from_ms == now_ms  # type: ignore[attr-defined]


def test_a_registration_that_breaks_its_group_fails_alone(
    store: RegistryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registration whose write the database refuses (say, a value PostgreSQL cannot store)
    must not take the others of its group commit down with it, nor be offered as retryable."""
    poisoned = _registration(3).sha256
    original = store_module._document_row

    def refuse_one(document):  # type: ignore[no-untyped-def]
        if document.sha256 == poisoned:
            raise ValueError("the database refused this row")
        return original(document)

    monkeypatch.setattr(store_module, "_document_row", refuse_one)
    outcomes: dict[int, object] = {}
    with ThreadPoolExecutor(6) as pool:
        with store._turn:  # all six queue behind another writer, then go in one group
            futures = [
                pool.submit(_register, store, ISSUER, _registration(n)) for n in range(6)
            ]
            deadline = time.monotonic() + 30
            while len(store._group._queue) < 6:
                assert time.monotonic() < deadline, "the registrations never queued"
                time.sleep(0.002)
        for n, future in enumerate(futures):
            try:
                outcomes[n] = future.result(timeout=30)
            except ValueError as error:
                outcomes[n] = error
    assert isinstance(outcomes.pop(3), ValueError)  # INTERNAL for that caller alone
    assert all(not isinstance(o, Exception) for o in outcomes.values()), outcomes
    assert store.tree_size() == 5


def test_history_is_appended_never_overwritten(store: RegistryStore, clock: FixedClock) -> None:
    old = _register(store, ISSUER, _registration(1)).document  # type: ignore[attr-defined]
    new = _register(store, ISSUER, _registration(2)).document  # type: ignore[attr-defined]
    clock.advance(5)
    store.supersede(ISSUER, old.document_id, new.document_id, "new address")
    clock.advance(5)
    store.revoke(ISSUER, new.document_id, RevocationReason.FRAUD, "forged")
    old_now, new_now = store.get(old.document_id), store.get(new.document_id)
    assert [c.status for c in old_now.history] == [
        DocumentStatus.REGISTERED,
        DocumentStatus.SUPERSEDED,
    ]
    assert old_now.history[0] == old.history[0]
    assert [c.leaf_index for c in new_now.history] == [1, 3]
    assert new_now.supersedes == old.document_id
    entries = store.log_entries(0, 4)
    assert [e.event_type for e in entries] == [
        merkle.LogEventType.REGISTERED,
        merkle.LogEventType.REGISTERED,
        merkle.LogEventType.SUPERSEDED,
        merkle.LogEventType.REVOKED,
    ]


def test_concurrent_registrations_are_committed_in_groups(store: RegistryStore) -> None:
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda n: _register(store, ISSUER, _registration(n)), range(300)))
    indexes = sorted(o.document.history[0].leaf_index for o in outcomes)  # type: ignore[attr-defined]
    assert indexes == list(range(300))
    head = store.signed_tree_head()
    for index in (0, 150, 299):
        entry, path, proof_head = store.inclusion_proof(leaf_index=index)
        merkle.verify_inclusion(
            merkle.leaf_hash(entry.leaf_data), index, head.tree_size, path, proof_head.root_hash
        )
    assert proof_head.root_hash == head.root_hash


def test_writers_of_forked_processes_queue_on_one_file_lock(store: RegistryStore) -> None:
    """Writers of several processes on one SQLite file take turns on the store's file lock: a
    forked worker has a lock of its own (sharing the parent's open file would let both in),
    and a registration waits while another process writes, then appends."""
    _register(store, ISSUER, _registration(0))  # the parent has used (opened) its lock
    held_read, held_write = os.pipe()
    release_read, release_write = os.pipe()
    pid = os.fork()  # as serve() forks its workers: with no transaction open
    if pid == 0:  # the other process: hold the writer lock until told; never return into pytest
        code = 1
        try:
            with store._turn:
                os.write(held_write, b"!")
                os.read(release_read, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(held_write)  # the child's ends: a child that dies gives EOF, not a hang
    os.close(release_read)
    try:
        assert os.read(held_read, 1) == b"!"
        with ThreadPoolExecutor(1) as pool:
            registering = pool.submit(_register, store, ISSUER, _registration(1))
            with pytest.raises(FutureTimeout):
                registering.result(timeout=0.5)  # waits for the other process
            os.write(release_write, b"!")
            outcome = registering.result(timeout=30)  # and appends once it is let in
        assert outcome.document.history[0].leaf_index == 1  # type: ignore[attr-defined]
    finally:
        os.close(release_write)  # EOF releases the child if the test failed before
        _, status = os.waitpid(pid, 0)
        os.close(held_read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.tree_size() == 2


def test_unreachable_database_is_unavailable_so_clients_retry() -> None:
    from egov_common.errors import Unavailable

    store = RegistryStore(
        "postgresql+psycopg://postgres@127.0.0.1:1/registry?connect_timeout=2",
        clock=FixedClock(),
        log_key=ec.generate_private_key(ec.SECP256R1()),
    )
    try:
        with pytest.raises(Unavailable) as read:
            store.get("DOC-" + "A" * 26)
        assert read.value.reason == "STORAGE_UNAVAILABLE"
        with pytest.raises(Unavailable) as write:
            store.register(ISSUER, [_registration(1)])
        assert write.value.reason == "STORAGE_BUSY"
    finally:
        store.close()


def test_a_head_of_an_earlier_size_is_dated_when_that_size_was_reached(
    store: RegistryStore, clock: FixedClock
) -> None:
    # Dated now, an earlier head would pass for the current one and hide what came after it
    # (a revocation) from a relying party that checks a head's age.
    _register(store, ISSUER, _registration(1))
    first_ms = int(clock.now().timestamp() * 1000)
    clock.advance(3600)
    _register(store, ISSUER, _registration(2))
    clock.advance(3600)
    now_ms = int(clock.now().timestamp() * 1000)
    assert store.signed_tree_head().timestamp_ms == now_ms
    assert store.signed_tree_head(1).timestamp_ms == first_ms
    _, _, head = store.inclusion_proof(leaf_index=0, tree_size=1)
    assert (head.tree_size, head.timestamp_ms) == (1, first_ms)
    _, head = store.consistency_proof(1, 1)
    assert head.timestamp_ms == first_ms
    _, head = store.consistency_proof(1, 2)
    assert head.timestamp_ms == now_ms


def _revoke_after_read(store: RegistryStore, document_id: str, statement_holds: str) -> list[str]:
    """Revoke ``document_id`` (in another thread, as another caller would) right after the
    store's first read whose SQL holds ``statement_holds``; the statements seen, for checks."""
    seen: list[str] = []

    def after(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)
        if statement_holds in statement and len([s for s in seen if statement_holds in s]) == 1:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(store.revoke, ISSUER, document_id, RevocationReason.FRAUD, "").result()

    import sqlalchemy as sa

    sa.event.listen(store._read_engine, "after_cursor_execute", after)
    return seen


def test_an_inclusion_proof_by_document_is_found_while_the_document_changes(
    store: RegistryStore,
) -> None:
    # A revocation committed between reading the tree size and the document's latest leaf made
    # the leaf lie beyond the size read: NOT_FOUND for a document that exists.
    document = _register(store, ISSUER, _registration(1)).document  # type: ignore[attr-defined]
    seen = _revoke_after_read(store, document.document_id, "log_head")
    entry, _, head = store.inclusion_proof(document_id=document.document_id)
    assert any("log_head" in s for s in seen)  # the revocation did come in between
    assert entry.leaf_index < head.tree_size
    assert store.get(document.document_id).status is DocumentStatus.REVOKED


def test_a_listing_by_status_leaves_out_a_document_whose_status_changed_meanwhile(
    store: RegistryStore,
) -> None:
    from egov_registry.domain.model import DocumentQuery

    first = _register(store, ISSUER, _registration(1)).document  # type: ignore[attr-defined]
    _register(store, ISSUER, _registration(2))
    _revoke_after_read(store, first.document_id, "ORDER BY")
    page = store.list_documents(
        DocumentQuery(issuer=AGENCY, status=DocumentStatus.REGISTERED), 10, ""
    )
    assert store.get(first.document_id).status is DocumentStatus.REVOKED
    assert [d.status for d in page.documents] == [DocumentStatus.REGISTERED]
    assert first.document_id not in [d.document_id for d in page.documents]


def test_the_millisecond_that_stands_for_no_validity_time_cannot_be_given(
    store: RegistryStore,
) -> None:
    # Given, it would read back as "no end" in the log and in the idempotency fingerprint: a
    # retry adding it would pass as the same registration.
    for field in ("valid_from_ms", "valid_until_ms"):
        outcome = _register(store, ISSUER, replace(_registration(3), **{field: -1}))
        assert isinstance(outcome, InvalidArgument) and outcome.reason == "VALIDITY_INVALID"
        assert outcome.field_violations[0].field == field.removesuffix("_ms")
    assert store.tree_size() == 0


def test_a_supersession_is_by_a_newer_document_and_retried_only_as_it_was(
    store: RegistryStore, clock: FixedClock
) -> None:
    older = _register(store, ISSUER, _registration(1)).document  # type: ignore[attr-defined]
    clock.advance(5)
    newer = _register(store, ISSUER, _registration(2)).document  # type: ignore[attr-defined]
    with pytest.raises(FailedPrecondition) as info:
        store.supersede(ISSUER, newer.document_id, older.document_id, "")
    assert info.value.reason == "NEW_DOCUMENT_NOT_ELIGIBLE" and "before" in info.value.message
    store.supersede(ISSUER, older.document_id, newer.document_id, "new address")
    size = store.tree_size()
    again, _ = store.supersede(ISSUER, older.document_id, newer.document_id, "new address")
    assert again.history[-1].reason_text == "new address" and store.tree_size() == size
    with pytest.raises(FailedPrecondition) as info:  # not silently taken as the same call
        store.supersede(ISSUER, older.document_id, newer.document_id, "another reason")
    assert info.value.reason == "DOCUMENT_SUPERSEDED"
    assert store.get(older.document_id).history[-1].reason_text == "new address"
