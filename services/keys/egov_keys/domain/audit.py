"""The hash-chained audit log: entry hashing and chain verification.

``entry_hash = SHA-256(previous_hash || canonical JSON of the entry's content)``; the first
entry links to 32 zero bytes. A removed entry leaves a gap in the sequence or a broken link; an
edited one no longer hashes to its ``entry_hash`` (and its successor no longer links to it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from egov_keys.domain.model import AuditRecord

__all__ = ["GENESIS_HASH", "ChainVerdict", "entry_hash", "verify_chain"]

GENESIS_HASH = bytes(32)


def entry_hash(
    previous_hash: bytes,
    sequence: int,
    occurred_at: dt.datetime,
    action: str,
    actor: str,
    credential_id: str,
    outcome: str,
    details_json: str,
) -> bytes:
    content = json.dumps(
        {
            "sequence": sequence,
            "occurred_at_us": _micros(occurred_at),
            "action": action,
            "actor": actor,
            "credential_id": credential_id,
            "outcome": outcome,
            "details": details_json,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return hashlib.sha256(previous_hash + content).digest()


def _micros(when: dt.datetime) -> int:
    delta = when.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    intact: bool
    entries_checked: int
    first_bad_sequence: int
    problem: str


def verify_chain(
    records: Iterable[AuditRecord], head_sequence: int, head_hash: bytes
) -> ChainVerdict:
    """Check every link and hash, and that the chain ends at the recorded head.

    The head (sequence and hash of the last append, kept in its own row) catches removal of the
    newest entries, which leaves no gap behind.
    """
    previous = GENESIS_HASH
    expected = 1
    count = 0
    for record in records:
        count += 1
        if record.sequence != expected:
            return ChainVerdict(False, count, expected, "entry missing (sequence gap)")
        if record.previous_hash != previous:
            return ChainVerdict(False, count, record.sequence, "does not link to previous entry")
        recomputed = entry_hash(
            previous,
            record.sequence,
            record.occurred_at,
            record.action,
            record.actor,
            record.credential_id,
            record.outcome,
            record.details_json,
        )
        if recomputed != record.entry_hash:
            return ChainVerdict(False, count, record.sequence, "content does not match its hash")
        previous = record.entry_hash
        expected += 1
    if expected - 1 != head_sequence or previous != head_hash:
        return ChainVerdict(False, count, expected, "chain does not end at the recorded head")
    return ChainVerdict(True, count, 0, "")
