"""The keys repository: every write that matters is one transaction with its audit entry.

Audit appends start each transaction by bumping the single ``audit_head`` row, so appends (and
the operations they record) are serialised by the database itself: two processes on one
PostgreSQL database produce one linear chain.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from egov_common.db import make_engine, upgrade_to_head
from egov_pki.identifiers import parse_identifier
from sqlalchemy.engine import Connection, Engine

from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm
from egov_keys.domain.audit import entry_hash
from egov_keys.domain.custody import CustodyBackend, KeyReference, KeyRole
from egov_keys.domain.model import (
    AuditEvent,
    AuditRecord,
    CertificateStatus,
    Credential,
    CredentialStatus,
    RevocationReason,
    SadRecord,
)
from egov_keys.domain.pki import OwnerKind
from egov_keys.storage.tables import (
    audit_head,
    audit_log,
    authorities,
    certificates,
    credentials,
    crls,
    sads,
)

__all__ = [
    "AuthorityRow",
    "CertificateRow",
    "CrlRow",
    "KeyTable",
    "KeysRepository",
    "StoredKey",
    "migrate",
]

MIGRATIONS = "egov_keys.storage.migrations"


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema."""
    upgrade_to_head(url, MIGRATIONS)


def to_us(when: dt.datetime) -> int:
    delta = when.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class AuthorityRow:
    name: str
    issuer: str
    key: KeyReference
    certificate_der: bytes
    revocation_epoch: int


@dataclass(frozen=True, slots=True)
class CertificateRow:
    serial: int
    issuer: str
    status: CertificateStatus
    revoked_at: dt.datetime | None
    reason: RevocationReason | None


@dataclass(frozen=True, slots=True)
class CrlRow:
    issuer: str
    number: int
    revocation_epoch: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


class KeyTable(enum.StrEnum):
    """The tables that hold key blobs."""

    AUTHORITIES = "authorities"
    CREDENTIALS = "credentials"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key blob where it is stored: ``row_id`` is the authority name or the credential id."""

    table: KeyTable
    row_id: str
    key: KeyReference


class KeysRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def from_url(cls, url: str) -> KeysRepository:
        return cls(make_engine(url))

    def dispose(self) -> None:
        self._engine.dispose()

    # -- audit -------------------------------------------------------------------------------

    def _append(self, conn: Connection, event: AuditEvent, now: dt.datetime) -> AuditRecord:
        head = conn.execute(
            sa.update(audit_head)
            .where(audit_head.c.id == 1)
            .values(sequence=audit_head.c.sequence + 1)
            .returning(audit_head.c.sequence, audit_head.c.entry_hash)
        ).one()
        sequence, previous = int(head[0]), bytes(head[1])
        # Round to microseconds, the stored resolution, so the verifier recomputes the same hash.
        now = from_us(to_us(now))
        digest = entry_hash(
            previous,
            sequence,
            now,
            event.action,
            event.actor,
            event.credential_id,
            event.outcome,
            event.details_json,
        )
        conn.execute(
            sa.insert(audit_log).values(
                sequence=sequence,
                occurred_at_us=to_us(now),
                action=event.action,
                actor=event.actor,
                credential_id=event.credential_id,
                outcome=event.outcome,
                details_json=event.details_json,
                previous_hash=previous,
                entry_hash=digest,
            )
        )
        conn.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(entry_hash=digest))
        return AuditRecord(
            sequence,
            now,
            event.action,
            event.actor,
            event.credential_id,
            event.outcome,
            event.details_json,
            previous,
            digest,
        )

    def append_audit(self, event: AuditEvent, now: dt.datetime) -> AuditRecord:
        with self._engine.begin() as conn:
            return self._append(conn, event, now)

    def audit_head(self) -> tuple[int, bytes]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one()
        return int(row.sequence), bytes(row.entry_hash)

    def audit_records(
        self, *, after_sequence: int = 0, credential_id: str = "", limit: int | None = None
    ) -> list[AuditRecord]:
        query = sa.select(audit_log).where(audit_log.c.sequence > after_sequence)
        if credential_id:
            query = query.where(audit_log.c.credential_id == credential_id)
        query = query.order_by(audit_log.c.sequence)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [_audit(row) for row in conn.execute(query)]

    def iter_audit(self, batch: int = 1000) -> Iterator[AuditRecord]:
        after = 0
        while True:
            page = self.audit_records(after_sequence=after, limit=batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].sequence

    # -- authorities ---------------------------------------------------------------------------

    def insert_authority(
        self,
        name: str,
        issuer: str,
        key: KeyReference,
        certificate_der: bytes,
        serial: int,
        not_after: dt.datetime,
        event: AuditEvent,
        now: dt.datetime,
    ) -> None:
        with self._engine.begin() as conn:
            self._append(conn, event, now)
            conn.execute(
                sa.insert(authorities).values(
                    name=name,
                    issuer=issuer,
                    key_id=key.key_id,
                    backend=key.backend.value,
                    algorithm=key.algorithm.value,
                    role=key.role.value,
                    public_key_der=key.public_key_der,
                    key_blob=key.blob,
                    certificate_der=certificate_der,
                    created_at_us=to_us(now),
                )
            )
            if name != issuer:
                conn.execute(
                    sa.insert(certificates).values(
                        serial_hex=f"{serial:x}",
                        issuer=issuer,
                        credential_id=None,
                        certificate_der=certificate_der,
                        not_after_us=to_us(not_after),
                        status=CertificateStatus.GOOD.value,
                    )
                )

    def authorities(self) -> dict[str, AuthorityRow]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(authorities)).all()
        return {
            row.name: AuthorityRow(
                row.name,
                row.issuer,
                KeyReference(
                    row.key_id,
                    CustodyBackend(row.backend),
                    KeyAlgorithm(row.algorithm),
                    KeyRole(row.role),
                    bytes(row.public_key_der),
                    bytes(row.key_blob),
                ),
                bytes(row.certificate_der),
                int(row.revocation_epoch),
            )
            for row in rows
        }

    def revocation_epoch(self, issuer: str) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(authorities.c.revocation_epoch).where(authorities.c.name == issuer)
            ).scalar_one()
        return int(value)

    # -- certificates, CRLs --------------------------------------------------------------------

    def certificate_status(self, issuer: str, serial: int) -> CertificateRow | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(certificates).where(
                    certificates.c.serial_hex == f"{serial:x}", certificates.c.issuer == issuer
                )
            ).one_or_none()
        return _certificate(row) if row is not None else None

    def revoked_certificates(self, issuer: str) -> list[CertificateRow]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(certificates).where(
                    certificates.c.issuer == issuer,
                    certificates.c.status == CertificateStatus.REVOKED.value,
                )
            ).all()
        return [_certificate(row) for row in rows]

    def latest_crl(self, issuer: str) -> CrlRow | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(crls)
                .where(crls.c.issuer == issuer)
                .order_by(crls.c.crl_number.desc())
                .limit(1)
            ).one_or_none()
        if row is None:
            return None
        return CrlRow(
            row.issuer,
            int(row.crl_number),
            int(row.revocation_epoch),
            from_us(row.this_update_us),
            from_us(row.next_update_us),
            bytes(row.crl_der),
        )

    def store_crl(self, crl: CrlRow, event: AuditEvent, now: dt.datetime) -> bool:
        """Store a CRL with its audit entry; False when another process stored this CRL number
        first (use theirs; nothing is audited)."""
        try:
            with self._engine.begin() as conn:
                self._append(conn, event, now)
                conn.execute(
                    sa.insert(crls).values(
                        issuer=crl.issuer,
                        crl_number=crl.number,
                        revocation_epoch=crl.revocation_epoch,
                        this_update_us=to_us(crl.this_update),
                        next_update_us=to_us(crl.next_update),
                        crl_der=crl.der,
                    )
                )
            return True
        except sa.exc.IntegrityError:
            return False

    # -- credentials ---------------------------------------------------------------------------

    def insert_credential(
        self,
        credential: Credential,
        idempotency_key: str,
        fingerprint: str,
        event: AuditEvent,
        now: dt.datetime,
        *,
        renews: str = "",
    ) -> None:
        """Store a new credential and its certificate; with ``renews``, mark that one RENEWED.

        Raises ``sqlalchemy.exc.IntegrityError`` when the idempotency key or the serial is taken.
        """
        with self._engine.begin() as conn:
            self._append(conn, event, now)
            conn.execute(
                sa.insert(credentials).values(
                    **_credential_values(credential),
                    idempotency_key=idempotency_key or None,
                    request_fingerprint=fingerprint or None,
                )
            )
            conn.execute(
                sa.insert(certificates).values(
                    serial_hex=f"{credential.certificate_serial:x}",
                    issuer=credential.issuer,
                    credential_id=credential.credential_id,
                    certificate_der=credential.certificate_der,
                    not_after_us=to_us(credential.not_after),
                    status=CertificateStatus.GOOD.value,
                )
            )
            if renews:
                done = conn.execute(
                    sa.update(credentials)
                    .where(
                        credentials.c.credential_id == renews,
                        credentials.c.status == CredentialStatus.ACTIVE.value,
                    )
                    .values(
                        status=CredentialStatus.RENEWED.value, renewed_by=credential.credential_id
                    )
                )
                if done.rowcount != 1:
                    raise StaleCredential(renews)

    def credential_by_idempotency_key(self, key: str) -> tuple[Credential, str] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(credentials).where(credentials.c.idempotency_key == key)
            ).one_or_none()
        if row is None:
            return None
        return _credential(row), row.request_fingerprint or ""

    def credential(self, credential_id: str) -> Credential | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(credentials).where(credentials.c.credential_id == credential_id)
            ).one_or_none()
        return _credential(row) if row is not None else None

    def list_credentials(
        self, owner: str, status: CredentialStatus | None, after_id: str, limit: int
    ) -> list[Credential]:
        query = sa.select(credentials).where(
            credentials.c.owner == owner, credentials.c.credential_id > after_id
        )
        if status is not None:
            query = query.where(credentials.c.status == status.value)
        query = query.order_by(credentials.c.credential_id).limit(limit)
        with self._engine.connect() as conn:
            return [_credential(row) for row in conn.execute(query)]

    def revoke_credential(
        self,
        credential: Credential,
        reason: RevocationReason,
        event: AuditEvent,
        now: dt.datetime,
    ) -> bool:
        """False when the credential was revoked meanwhile (nothing written)."""
        with self._engine.begin() as conn:
            self._append(conn, event, now)
            done = conn.execute(
                sa.update(credentials)
                .where(
                    credentials.c.credential_id == credential.credential_id,
                    credentials.c.status != CredentialStatus.REVOKED.value,
                )
                .values(
                    status=CredentialStatus.REVOKED.value,
                    revoked_at_us=to_us(now),
                    revocation_reason=reason.value,
                )
            )
            if done.rowcount != 1:
                raise StaleCredential(credential.credential_id)
            conn.execute(
                sa.update(certificates)
                .where(certificates.c.serial_hex == f"{credential.certificate_serial:x}")
                .values(
                    status=CertificateStatus.REVOKED.value,
                    revoked_at_us=to_us(now),
                    revocation_reason=reason.value,
                )
            )
            conn.execute(
                sa.update(authorities)
                .where(authorities.c.name == credential.issuer)
                .values(revocation_epoch=authorities.c.revocation_epoch + 1)
            )
        return True

    # -- SADs ----------------------------------------------------------------------------------

    def insert_sad(self, sad: SadRecord, event: AuditEvent, now: dt.datetime) -> None:
        with self._engine.begin() as conn:
            self._append(conn, event, now)
            conn.execute(
                sa.insert(sads).values(
                    sad_hash=sad.sad_hash,
                    credential_id=sad.credential_id,
                    hash_algorithm=sad.hash_algorithm.value,
                    hashes_binding=sad.hashes_binding,
                    num_signatures=sad.num_signatures,
                    expires_at_us=to_us(sad.expires_at),
                    spent_at_us=None,
                )
            )
            # Expired SADs are useless; drop old ones while we hold the write lock anyway.
            conn.execute(
                sa.delete(sads).where(sads.c.expires_at_us < to_us(now - dt.timedelta(hours=1)))
            )

    def sad(self, sad_hash: str) -> SadRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(sads).where(sads.c.sad_hash == sad_hash)).one_or_none()
        if row is None:
            return None
        return SadRecord(
            row.sad_hash,
            row.credential_id,
            HashAlgorithm(row.hash_algorithm),
            row.hashes_binding,
            int(row.num_signatures),
            from_us(row.expires_at_us),
            from_us(row.spent_at_us) if row.spent_at_us is not None else None,
        )

    def spend_sad(self, sad: SadRecord, event: AuditEvent, now: dt.datetime) -> bool:
        """Atomically mark the SAD spent and audit it; False when it was spent or expired
        meanwhile (another call or another process won) or its credential is no longer active
        (revoked or renewed between the caller's check and this write)."""
        try:
            with self._engine.begin() as conn:
                self._append(conn, event, now)
                still_active = (
                    sa.select(credentials.c.credential_id)
                    .where(
                        credentials.c.credential_id == sads.c.credential_id,
                        credentials.c.status == CredentialStatus.ACTIVE.value,
                    )
                    .exists()
                )
                done = conn.execute(
                    sa.update(sads)
                    .where(
                        sads.c.sad_hash == sad.sad_hash,
                        sads.c.spent_at_us.is_(None),
                        sads.c.expires_at_us > to_us(now),
                        still_active,
                    )
                    .values(spent_at_us=to_us(now))
                )
                if done.rowcount != 1:
                    raise _Lost()
        except _Lost:
            return False
        return True

    # -- key blobs (KEK rotation) --------------------------------------------------------------

    def software_keys(self, table: KeyTable, after: str, limit: int) -> list[StoredKey]:
        """Up to ``limit`` software-custody keys of ``table`` whose row id sorts after ``after``
        (keyset pages: pass the last row id of the previous page)."""
        t = authorities if table is KeyTable.AUTHORITIES else credentials
        pk = t.c.name if table is KeyTable.AUTHORITIES else t.c.credential_id
        role = t.c.role if table is KeyTable.AUTHORITIES else sa.literal(KeyRole.OWNER.value)
        query = (
            sa.select(
                pk.label("row_id"),
                t.c.key_id,
                t.c.algorithm,
                role.label("role"),
                t.c.public_key_der,
                t.c.key_blob,
            )
            .where(t.c.backend == CustodyBackend.SOFTWARE.value, pk > after)
            .order_by(pk)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredKey(
                table,
                str(row.row_id),
                KeyReference(
                    str(row.key_id),
                    CustodyBackend.SOFTWARE,
                    KeyAlgorithm(row.algorithm),
                    KeyRole(row.role),
                    bytes(row.public_key_der),
                    bytes(row.key_blob),
                ),
            )
            for row in rows
        ]

    def replace_key_blobs(
        self,
        table: KeyTable,
        changes: Sequence[tuple[StoredKey, bytes]],
        audit: Callable[[list[StoredKey]], AuditEvent | None],
        now: dt.datetime,
    ) -> list[StoredKey]:
        """Swap each stored blob for its new one, in one transaction with the audit entry that
        ``audit`` makes of the keys actually swapped (None: no entry).

        A blob is swapped only if it is still the one that was read (compare-and-set on the
        blob), so a concurrent run, or a key that changed meanwhile, is never overwritten;
        returns the keys swapped.
        """
        t = authorities if table is KeyTable.AUTHORITIES else credentials
        pk = t.c.name if table is KeyTable.AUTHORITIES else t.c.credential_id
        with self._engine.begin() as conn:
            # The audit head first, as every other write does: this transaction queues behind
            # the service's writes (which append, then update a row) instead of deadlocking.
            conn.execute(
                sa.update(audit_head)
                .where(audit_head.c.id == 1)
                .values(sequence=audit_head.c.sequence)
            )
            done = []
            for stored, blob in changes:
                swapped = conn.execute(
                    sa.update(t)
                    .where(pk == stored.row_id, t.c.key_blob == stored.key.blob)
                    .values(key_blob=blob)
                )
                if swapped.rowcount == 1:
                    done.append(stored)
            event = audit(done)
            if event is not None:
                self._append(conn, event, now)
        return done

    def software_kek_ids(self) -> Counter[str]:
        """How many software blobs (CA keys and credential keys) name each KEK id.

        Counted in the database from the blob header (``EGK1``, a length byte, the id; see
        adapters/software_custody.py) without reading the blobs out.
        """
        counts: Counter[str] = Counter()
        with self._engine.connect() as conn:
            for t in (authorities, credentials):
                blob = t.c.key_blob
                software = sa.and_(
                    t.c.backend == CustodyBackend.SOFTWARE.value,
                    _substr(blob, 1, 4) == _SOFTWARE_MAGIC,
                )
                lengths = sa.select(_substr(blob, 5, 1).label("n")).where(software).subquery()
                for (n,) in conn.execute(sa.select(lengths.c.n).distinct()).all():
                    size = bytes(n)[0] if n else 0
                    if size == 0:
                        continue
                    ids = (
                        sa.select(_substr(blob, 6, size).label("kek_id"))
                        .where(software, _substr(blob, 5, 1) == bytes([size]))
                        .subquery()
                    )
                    query = sa.select(ids.c.kek_id, sa.func.count()).group_by(ids.c.kek_id)
                    for kek_id, count in conn.execute(query).all():
                        counts[bytes(kek_id).decode("utf-8", "replace")] += int(count)
        return counts


_SOFTWARE_MAGIC = b"EGK1"


def _substr(column: sa.ColumnElement[bytes], start: int, length: int) -> sa.ColumnElement[bytes]:
    # substr() on bytes in both SQLite and PostgreSQL; 1-based byte offsets. The offsets are
    # literals (our own ints): PostgreSQL then sees the same expression wherever it repeats.
    return sa.func.substr(
        column,
        sa.literal_column(str(int(start))),
        sa.literal_column(str(int(length))),
        type_=sa.LargeBinary,
    )


class _Lost(Exception):
    pass


class StaleCredential(Exception):
    """The credential changed state between read and write."""


def _audit(row: sa.Row[tuple[object, ...]]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        int(m["sequence"]),
        from_us(int(m["occurred_at_us"])),
        str(m["action"]),
        str(m["actor"]),
        str(m["credential_id"]),
        str(m["outcome"]),
        str(m["details_json"]),
        bytes(m["previous_hash"]),
        bytes(m["entry_hash"]),
    )


def _certificate(row: sa.Row[tuple[object, ...]]) -> CertificateRow:
    m = row._mapping
    return CertificateRow(
        int(str(m["serial_hex"]), 16),
        str(m["issuer"]),
        CertificateStatus(m["status"]),
        from_us(int(m["revoked_at_us"])) if m["revoked_at_us"] is not None else None,
        RevocationReason(m["revocation_reason"]) if m["revocation_reason"] else None,
    )


def _credential_values(c: Credential) -> dict[str, object]:
    return {
        "credential_id": c.credential_id,
        "owner": str(c.owner),
        "kind": c.kind.value,
        "key_id": c.key.key_id,
        "backend": c.key.backend.value,
        "algorithm": c.key.algorithm.value,
        "public_key_der": c.key.public_key_der,
        "key_blob": c.key.blob,
        "certificate_der": c.certificate_der,
        "certificate_serial": f"{c.certificate_serial:x}",
        "issuer": c.issuer,
        "not_before_us": to_us(c.not_before),
        "not_after_us": to_us(c.not_after),
        "status": c.status.value,
        "created_at_us": to_us(c.created_at),
        "created_by": c.created_by,
        "max_signatures": c.max_signatures,
        "renewed_from": c.renewed_from,
        "renewed_by": c.renewed_by,
    }


def _credential(row: sa.Row[tuple[object, ...]]) -> Credential:
    m = row._mapping
    return Credential(
        credential_id=str(m["credential_id"]),
        owner=parse_identifier(str(m["owner"])),
        kind=OwnerKind(m["kind"]),
        key=KeyReference(
            str(m["key_id"]),
            CustodyBackend(m["backend"]),
            KeyAlgorithm(m["algorithm"]),
            KeyRole.OWNER,
            bytes(m["public_key_der"]),
            bytes(m["key_blob"]),
        ),
        certificate_der=bytes(m["certificate_der"]),
        certificate_serial=int(str(m["certificate_serial"]), 16),
        issuer=str(m["issuer"]),
        not_before=from_us(int(m["not_before_us"])),
        not_after=from_us(int(m["not_after_us"])),
        status=CredentialStatus(m["status"]),
        created_at=from_us(int(m["created_at_us"])),
        created_by=str(m["created_by"]),
        max_signatures=int(m["max_signatures"]),
        renewed_from=str(m["renewed_from"]),
        renewed_by=str(m["renewed_by"]),
        revoked_at=from_us(int(m["revoked_at_us"])) if m["revoked_at_us"] is not None else None,
        revocation_reason=(
            RevocationReason(m["revocation_reason"]) if m["revocation_reason"] else None
        ),
    )
