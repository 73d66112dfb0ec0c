"""Writes of Authorize and SignHash that wait for the same commit are committed together, yet
each keeps its own fate: a SAD signs once, every success has its audit entry, a write that
fails fails alone and spends nothing; another process's appends keep the chain linear."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from egov_common.errors import EgovError
from egov_keys.storage.repository import KeysRepository
from keys_world import ADMIN, build_keys, new_kek, sha256
from test_keys_sole_control import authorize, create_person, sign


def _run_queued(keys, calls: list[Callable[[], object]], queued: int) -> list[object]:
    """Run ``calls`` in threads while this thread holds the repository's write turn, and let
    go once ``queued`` writes wait: they are committed as one group."""
    repository = keys.repository
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except EgovError as exc:
            results[i] = exc.reason

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with repository._turn:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(repository._group._queue) < queued:
            assert time.monotonic() < deadline, "the writes never queued"
            time.sleep(0.005)
    for t in threads:
        t.join()
    return results


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """The size of every group the repository commits."""
    sizes: list[int] = []
    original = KeysRepository._commit

    def counting(self, jobs):
        sizes.append(len(jobs))
        return original(self, jobs)

    monkeypatch.setattr(KeysRepository, "_commit", counting)
    return sizes


def test_queued_spends_commit_together_and_each_sad_signs_once(keys, identity, batches):
    credential = create_person(keys, identity)
    hashes = [[sha256(f"doc {i}".encode())] for i in range(6)]
    sads = [authorize(keys.credentials, identity, credential, h) for h in hashes]
    calls: list[Callable[[], object]] = [
        (lambda i=i: sign(keys.credentials, credential, sads[i], hashes[i])) for i in range(6)
    ]
    # The same SAD twice in one group: one of the two spends wins.
    calls.append(lambda: sign(keys.credentials, credential, sads[0], hashes[0]))
    batches.clear()
    results = _run_queued(keys, calls, queued=7)

    signed = [r for r in results if isinstance(r, list)]
    assert len(signed) == 6
    assert results.count("SAD_ALREADY_USED") == 1
    assert 7 in batches  # the seven spends went into one transaction
    outcomes = [r.outcome for r in keys.repository.audit_records() if r.action == "signature.batch"]
    assert outcomes.count("success") == 6
    assert outcomes.count("failure:SAD_ALREADY_USED") == 1
    verdict = keys.credentials.verify_audit(ADMIN)
    assert verdict.intact, verdict.problem


def test_a_write_that_fails_in_a_group_fails_alone(keys, identity, monkeypatch, batches):
    good = create_person(keys, identity, key="good")
    bad = create_person(keys, identity, key="bad")
    good_hashes = [[sha256(f"good {i}".encode())] for i in range(3)]
    good_sads = [authorize(keys.credentials, identity, good, h) for h in good_hashes]
    bad_hashes = [sha256(b"bad")]
    bad_sad = authorize(keys.credentials, identity, bad, bad_hashes)
    original = KeysRepository._append

    def failing_for_bad(self, cursor, entries, head=None):
        if any(event.credential_id == bad.credential_id for event, _ in entries):
            raise sa.exc.OperationalError("INSERT INTO audit_log", {}, Exception("disk full"))
        return original(self, cursor, entries, head)

    monkeypatch.setattr(KeysRepository, "_append", failing_for_bad)
    calls: list[Callable[[], object]] = [
        (lambda i=i: sign(keys.credentials, good, good_sads[i], good_hashes[i])) for i in range(3)
    ]
    calls.append(lambda: sign(keys.credentials, bad, bad_sad, bad_hashes))
    batches.clear()
    results = _run_queued(keys, calls, queued=4)

    assert batches[0] == 4  # tried together, then one by one
    assert [isinstance(r, list) for r in results[:3]] == [True, True, True]
    assert results[3] == "AUDIT_UNAVAILABLE"
    # The failed write spent nothing: the SAD still signs once the audit log can be written.
    stored = keys.repository.sad(hashlib.sha256(bad_sad.encode()).hexdigest())
    assert stored is not None and stored.spent_at is None
    monkeypatch.setattr(KeysRepository, "_append", original)
    assert len(sign(keys.credentials, bad, bad_sad, bad_hashes)) == 1
    assert keys.credentials.verify_audit(ADMIN).intact


def test_two_processes_on_one_database_append_to_one_chain(sqlite_url, identity, clock):
    """Each repository keeps where it left the head; the other's appends move it meanwhile."""
    kek = new_kek()
    first = build_keys(sqlite_url, identity, clock, software_kek=kek)
    second = build_keys(sqlite_url, identity, clock, software_kek=kek)
    try:
        credential = create_person(first, identity)
        for i in range(6):
            a, b = (first, second) if i % 2 else (second, first)
            hashes = [sha256(f"doc {i}".encode())]
            sad = authorize(a.credentials, identity, credential, hashes)
            assert len(sign(b.credentials, credential, sad, hashes)) == 1
            with pytest.raises(EgovError) as info:
                sign(a.credentials, credential, sad, hashes)
            assert info.value.reason == "SAD_ALREADY_USED"
        records = first.repository.audit_records()
        assert [r.sequence for r in records] == list(range(1, len(records) + 1))
        assert first.credentials.verify_audit(ADMIN).intact
        assert second.credentials.verify_audit(ADMIN).intact
    finally:
        first.close()
        second.close()
