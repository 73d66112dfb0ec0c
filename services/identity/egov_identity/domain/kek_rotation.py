"""KEK rotation: find sealed values under other KEKs, and re-seal them under the current one.

Three kinds of values are sealed under the KEK (``secrets_box.py``): signing keys' private
halves, TOTP seeds, and the service's own secrets (the pairwise salt). Each sits beside a column
naming its KEK id, NULL for values sealed before ids were recorded (migration 0003).

:func:`rewrap_sealed_values` is ``python -m egov_identity rewrap-kek``. It is safe while other
processes serve from the same database: it reads a batch in one short transaction, opens and
re-seals outside any transaction, and writes each value back with a compare-and-set on the old
blob, so a value a serving process changed meanwhile (a TOTP re-enrolment) is left as that
process wrote it. Run again, it finds nothing left to do; interrupted, it resumes where the
values still are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from egov_common.errors import EgovError
from sqlalchemy.engine import Engine

from egov_identity.domain.secrets_box import SecretBox
from egov_identity.storage import tables as t

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """Where one kind of sealed value lives; ``what`` names a row in messages."""

    kind: str
    table: sa.Table
    key: sa.Column[str]
    blob: sa.Column[bytes]
    kek_id: sa.Column[str]
    what: Callable[[str], str]


SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn("signing keys", t.signing_keys, t.signing_keys.c.kid,
                 t.signing_keys.c.private_key_enc, t.signing_keys.c.private_key_kek_id,
                 lambda kid: f"signing key {kid}"),
    SealedColumn("TOTP seeds", t.persons, t.persons.c.person_id, t.persons.c.totp_secret_enc,
                 t.persons.c.totp_kek_id, lambda pid: f"TOTP seed of person {pid}"),
    SealedColumn("service secrets", t.service_secrets, t.service_secrets.c.name,
                 t.service_secrets.c.value_enc, t.service_secrets.c.kek_id,
                 lambda name: f"service secret {name}"),
)


def _not_under(column: SealedColumn, kek_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(column.blob.is_not(None),
                   sa.or_(column.kek_id.is_(None), column.kek_id != kek_id))


@dataclass(slots=True)
class RewrapCount:
    """One kind of value after a rewrap run."""

    kind: str
    resealed: int = 0
    already_current: int = 0
    #: Changed by a serving process between read and write (left as that process wrote it).
    changed_meanwhile: int = 0
    #: Still under another (or an unrecorded) KEK when the run ended.
    remaining: int = 0
    #: ``what`` + reason for each value no KEK given opens (never the value).
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RewrapReport:
    kek_id: str
    counts: tuple[RewrapCount, ...]

    @property
    def failures(self) -> list[str]:
        return [f for c in self.counts for f in c.failures]

    @property
    def remaining(self) -> int:
        return sum(c.remaining for c in self.counts)


def rewrap_sealed_values(engine: Engine, box: SecretBox, *, batch_size: int = 200,
                         columns: Sequence[SealedColumn] = SEALED_COLUMNS) -> RewrapReport:
    """Re-seal every value not under ``box``'s current KEK with it, ``batch_size`` rows per
    transaction. Values no KEK of ``box`` opens are reported in ``failures`` and left alone;
    the others are still re-sealed."""
    current = box.current_kek_id
    counts = []
    for column in columns:
        count = RewrapCount(column.kind)
        with engine.connect() as conn:
            count.already_current = conn.execute(
                sa.select(sa.func.count()).select_from(column.table).where(
                    column.kek_id == current)).scalar_one()
        after: str | None = None
        while True:
            query = sa.select(column.key, column.blob).where(_not_under(column, current))
            if after is not None:
                query = query.where(column.key > after)
            with engine.connect() as conn:
                rows = conn.execute(query.order_by(column.key).limit(batch_size)).all()
            if not rows:
                break
            after = rows[-1][0]
            updates = []
            for key, blob in rows:
                what = column.what(key)
                try:
                    plaintext, _ = box.open_with_id(blob, key, what=what)
                except EgovError as exc:  # KekUnknown, SealedValueUnreadable: name the row
                    count.failures.append(exc.message)
                    continue
                updates.append((key, blob, box.seal(plaintext, key)))
            with engine.begin() as conn:
                for key, old, new in updates:
                    written = conn.execute(column.table.update().where(
                        column.key == key, column.blob == old).values(
                        {column.blob.name: new, column.kek_id.name: current})).rowcount
                    if written:
                        count.resealed += 1
                    else:
                        count.changed_meanwhile += 1
        with engine.connect() as conn:
            count.remaining = conn.execute(
                sa.select(sa.func.count()).select_from(column.table).where(
                    _not_under(column, current))).scalar_one()
        log.info("sealed values re-sealed under the current KEK", extra={
            "kind": column.kind, "kek_id": current, "resealed": count.resealed,
            "already_current": count.already_current, "remaining": count.remaining,
            "failures": len(count.failures)})
        counts.append(count)
    return RewrapReport(current, tuple(counts))


@dataclass(frozen=True, slots=True)
class UnknownKekCount:
    kind: str
    kek_id: str
    rows: int


def values_under_unknown_keks(engine: Engine, box: SecretBox,
                              columns: Sequence[SealedColumn] = SEALED_COLUMNS
                              ) -> list[UnknownKekCount]:
    """Values whose recorded KEK id is none of ``box``'s (an indexed query per kind; values
    sealed before KEK ids are not counted: only opening them tells)."""
    found = []
    with engine.connect() as conn:
        for column in columns:
            rows = conn.execute(sa.select(column.kek_id, sa.func.count()).where(
                column.kek_id.is_not(None), column.kek_id.not_in(box.kek_ids),
                column.blob.is_not(None)).group_by(column.kek_id)).all()
            found += [UnknownKekCount(column.kind, str(k), int(n)) for k, n in rows]
    return found


def unrecorded_values(engine: Engine, columns: Sequence[SealedColumn] = SEALED_COLUMNS
                      ) -> int:
    """How many values were sealed before KEK ids were recorded (rewrap-kek records them)."""
    with engine.connect() as conn:
        return sum(conn.execute(sa.select(sa.func.count()).select_from(column.table).where(
            column.blob.is_not(None), column.kek_id.is_(None))).scalar_one()
            for column in columns)
