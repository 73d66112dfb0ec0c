"""Rotating the software backend's key-encryption key (KEK).

1. Every replica gets the new KEK as the current one and the old one as a previous KEK: new keys
   are sealed under the new KEK, blobs under the old one still open.
2. :func:`rewrap_software_keys` (``python -m egov_keys rewrap-kek``) re-seals every blob that is
   not under the current KEK, a page at a time: each page is one short transaction with its
   audit entry, each blob swapped only if it is still the one that was read. A run stopped
   anywhere leaves every blob under one of the two KEKs; running it again finishes the job, and
   once nothing is left it changes nothing.
3. The old KEK is dropped from the settings. :func:`require_known_keks` makes a replica that
   would still meet a blob under a KEK it lacks refuse to start, naming that KEK id.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from egov_common.clock import Clock
from egov_common.errors import FailedPrecondition

from egov_keys.adapters.software_custody import KekMismatch, SoftwareCustody, blob_kek_id
from egov_keys.domain.custody import UnknownKek
from egov_keys.domain.model import AuditEvent
from egov_keys.storage.repository import KeysRepository, KeyTable, StoredKey

__all__ = [
    "REWRAP_ACTION",
    "RewrapFailure",
    "RewrapReport",
    "require_known_keks",
    "rewrap_software_keys",
]

REWRAP_ACTION = "kek.rewrap"


@dataclass(frozen=True, slots=True)
class RewrapFailure:
    """A blob that opens under no KEK given: its key id and the KEK id it names, never more."""

    table: KeyTable
    key_id: str
    kek_id: str
    problem: str


@dataclass
class RewrapReport:
    current_kek_id: str
    #: Re-wrapped keys per KEK id they were under.
    rewrapped: Counter[str] = field(default_factory=Counter)
    #: Re-wrapped keys per table (CA keys, credential keys).
    rewrapped_in: Counter[KeyTable] = field(default_factory=Counter)
    #: Blobs already under the current KEK (each opened to be sure).
    already_current: int = 0
    #: Blobs changed by someone else between read and swap (another run): left alone.
    skipped: int = 0
    failures: list[RewrapFailure] = field(default_factory=list)
    audit_entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> list[str]:
        total = sum(self.rewrapped.values())
        lines = [f"re-wrapped under KEK {self.current_kek_id!r}: {total}"]
        for kek_id, count in sorted(self.rewrapped.items()):
            lines.append(f"  from KEK {kek_id!r}: {count}")
        if total:
            lines.append(
                f"  ({self.rewrapped_in[KeyTable.AUTHORITIES]} CA/OCSP/TSA keys, "
                f"{self.rewrapped_in[KeyTable.CREDENTIALS]} credential keys; "
                f"{self.audit_entries} audit entries)"
            )
        lines.append(f"already under {self.current_kek_id!r}: {self.already_current}")
        if self.skipped:
            lines.append(f"changed meanwhile by another run (left alone): {self.skipped}")
        if self.failures:
            lines.append(f"could not be re-wrapped: {len(self.failures)}")
            for failure in self.failures:
                lines.append(f"  {failure.key_id}: {failure.problem}")
        return lines


def rewrap_software_keys(
    repository: KeysRepository,
    custody: SoftwareCustody,
    clock: Clock,
    *,
    batch_size: int = 100,
    actor: str = "rewrap-kek",
    progress: Callable[[int], None] | None = None,
) -> RewrapReport:
    """Re-seal every software blob (CA keys first, then credential keys) that is not under the
    current KEK; open every other one to check it. ``progress`` is told how many blobs have
    been looked at after each page.

    Safe beside serving replicas on the same database: pages are read without locks, and each
    page's swaps and its audit entry are one transaction that waits its turn at the audit head.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RewrapReport(custody.kek_id)
    seen = 0
    for table in (KeyTable.AUTHORITIES, KeyTable.CREDENTIALS):
        after = ""
        while True:
            page = repository.software_keys(table, after, batch_size)
            if not page:
                break
            after = page[-1].row_id
            seen += len(page)
            _rewrap_page(repository, custody, clock, table, page, actor, report)
            if progress is not None:
                progress(seen)
    return report


def _rewrap_page(
    repository: KeysRepository,
    custody: SoftwareCustody,
    clock: Clock,
    table: KeyTable,
    page: list[StoredKey],
    actor: str,
    report: RewrapReport,
) -> None:
    changes: list[tuple[StoredKey, bytes]] = []
    from_kek: dict[str, str] = {}
    failures: list[RewrapFailure] = []
    for stored in page:
        kek_id = blob_kek_id(stored.key.blob)
        try:
            if kek_id == custody.kek_id:
                custody.check(stored.key)
                report.already_current += 1
                continue
            rewrapped = custody.rewrap(stored.key)
        except UnknownKek as exc:
            failures.append(
                RewrapFailure(table, stored.key.key_id, exc.kek_id, _unknown(exc.kek_id))
            )
            continue
        except KekMismatch as exc:
            failures.append(
                RewrapFailure(
                    table,
                    stored.key.key_id,
                    exc.kek_id,
                    f"does not open under the KEK given as {exc.kek_id!r} (wrong key for that "
                    "id, or the blob was moved or edited)",
                )
            )
            continue
        except ValueError:
            failures.append(
                RewrapFailure(table, stored.key.key_id, "", "is not a software key blob")
            )
            continue
        changes.append((stored, rewrapped.blob))
        from_kek[stored.row_id] = kek_id or ""
    if not changes and not failures:
        return

    def audit(done: list[StoredKey]) -> AuditEvent | None:
        if not done and not failures:
            return None
        details = {
            "table": table.value,
            "to_kek_id": custody.kek_id,
            "rewrapped": [
                {"key_id": s.key.key_id, "from_kek_id": from_kek[s.row_id]} for s in done
            ],
            "failed": [
                {"key_id": f.key_id, "kek_id": f.kek_id, "problem": f.problem} for f in failures
            ],
        }
        outcome = "failure:KEK_UNWRAP_FAILED" if failures else "success"
        return AuditEvent(REWRAP_ACTION, actor, "", outcome, json.dumps(details))

    done = repository.replace_key_blobs(table, changes, audit, clock.now())
    report.failures.extend(failures)
    report.audit_entries += 1 if (done or failures) else 0
    report.skipped += len(changes) - len(done)
    for stored in done:
        report.rewrapped[from_kek[stored.row_id]] += 1
        report.rewrapped_in[table] += 1


def _unknown(kek_id: str) -> str:
    return (
        f"is sealed under KEK id {kek_id!r}, which is neither the current KEK nor among "
        "EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS"
    )


def require_known_keks(repository: KeysRepository, custody: SoftwareCustody) -> None:
    """FAILED_PRECONDITION ``KEK_UNKNOWN`` naming every KEK id that some stored blob is sealed
    under but this custody was not given (start-up check: the service would fail on those
    keys later, one signature at a time)."""
    counts = repository.software_kek_ids()
    unknown = {k: n for k, n in counts.items() if k not in custody.kek_ids}
    if unknown:
        named = ", ".join(f"{k!r} ({n} keys)" for k, n in sorted(unknown.items()))
        raise FailedPrecondition(
            "KEK_UNKNOWN",
            f"key blobs are sealed under KEK id {named}, which is neither "
            f"EGOV_KEYS_SOFTWARE_KEK_ID ({custody.kek_id!r}) nor in "
            "EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS: give that KEK as a previous KEK, run "
            "'python -m egov_keys rewrap-kek', then drop it",
        )
