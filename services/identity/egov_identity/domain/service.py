"""The identity service's use cases: proofing, login, OIDC grants, CIBA, representation.

One object, :class:`IdentityService`, built once in ``__main__`` (and by tests) from a config, an
engine, a clock and the authoritative sources; gRPC servicers and HTTP endpoints both call it.
Everything single-use is consumed with a conditional UPDATE (``... WHERE used_at IS NULL``) whose
row count decides, so two processes on one database cannot both redeem a code or refresh token.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from egov_common.clock import Clock
from egov_common.errors import (
    AlreadyExists,
    DeadlineExceeded,
    EgovError,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from egov_common.forking import in_forked_children
from egov_pki.identifiers import Identifier, Namespace, parse_identifier
from egov_pki.tokens import ACCESS_TOKEN_TYPE, TokenVerifier, VerifiedToken, acr_for_aal
from sqlalchemy.engine import Engine

from egov_identity.adapters.sources import (
    CivilRegistry,
    CompanyRegister,
    KycProviders,
    RegisteredCompany,
)
from egov_identity.domain import model as m
from egov_identity.domain.authentication import (
    Passwords,
    Throttle,
    ThrottlePolicy,
    account_key,
    client_key,
    otpauth_uri,
    totp_matching_step,
)
from egov_identity.domain.client_assertions import ClientKeys, replay_window_end, verify_assertion
from egov_identity.domain.kek_rotation import (
    UnknownKekCount,
    unrecorded_values,
    values_under_unknown_keks,
)
from egov_identity.domain.keyring import ID_TOKEN_ALGORITHMS, KeyRing
from egov_identity.domain.levels import AAL_LEVELS, AssuranceLevels
from egov_identity.domain.password_policy import PasswordContext, PasswordPolicy, normalise
from egov_identity.domain.proofing import (
    KIND_OF,
    Evidence,
    EvidenceOutcome,
    EvidenceResult,
    EvidenceVerifier,
    IdCardChipVerifier,
    IdpKycVerifier,
    InPersonVerifier,
    PassportVerifier,
    PersonAttributes,
    ProofingState,
    evidence_summary,
    ial_from_strengths,
)
from egov_identity.domain.secrets_box import KekUnknown, SecretBox, digest
from egov_identity.storage import tables as t
from egov_identity.storage.hot_path import HotConnection, HotPath

log = logging.getLogger(__name__)

TRUST_FRAMEWORK = "th_digital_id"
#: How long a process trusts its cached copy of a client registration.
CLIENT_CACHE_SECONDS = 5.0
#: ``service_secrets`` row holding the pairwise-subject HMAC key.
PAIRWISE_SALT = "pairwise_salt"
#: Verifiers of our own tokens kept, one per audience set (see IdentityService.verifier).
_MAX_VERIFIERS = 256
#: A ListRepresentations page token: the offset of the page.
_PAGE_TOKEN = re.compile(r"[0-9]{1,9}")
#: An ``acr_values`` value that names an AAL (ASCII digits: str.isdigit also takes "²").
_ACR_AAL = re.compile(r"(?:urn:egov:aal:)?([0-9]{1,3})")
#: The AAL of a CIBA approval: the registered device's key plus the person's consent on it.
CIBA_AAL = 2
#: Unicode categories a CIBA binding message may not hold (CIBA Core 7.1: plain text the person
#: compares by eye): controls (line breaks, terminal escapes), format characters (direction
#: overrides and isolates, zero-width ones), surrogates, private use, unassigned, and line and
#: paragraph separators. Thai letters, vowel and tone marks and digits are none of these.
_NOT_PLAIN_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: RFC 7636 section 4.1: 43 to 128 unreserved characters.
_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
#: RFC 7636 section 4.2: BASE64URL (unpadded) of a SHA-256 digest.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Behaviour knobs (from settings). Durations are seconds."""

    issuer: str
    #: The current key-encryption key (32 bytes): seals every new secret.
    kek: bytes = field(repr=False)
    ial_levels: AssuranceLevels = field(default_factory=AssuranceLevels)
    #: HMAC key of pairwise subjects; empty: one kept sealed in the database (see
    #: :meth:`IdentityService.pairwise_key`).
    pairwise_salt: bytes = field(default=b"", repr=False)
    access_token_seconds: int = 300
    id_token_seconds: int = 300
    refresh_token_seconds: int = 8 * 3600
    code_seconds: int = 60
    login_session_seconds: int = 600
    proofing_seconds: int = 3600
    ciba_expires_seconds: int = 120
    ciba_interval_seconds: int = 5
    key_rotation_seconds: float = 30 * 86400
    key_publish_ahead_seconds: float = 86400
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    powers: tuple[str, ...] = ("sign", "seal", "register-documents")
    leeway_seconds: float = 30.0
    #: Earlier KEKs: what they sealed still opens (until ``rewrap-kek`` re-seals it).
    previous_keks: tuple[bytes, ...] = field(default=(), repr=False)
    #: An agency's own blocklist, in :func:`~egov_identity.domain.password_policy.
    #: blocklist_entries` form, on top of the list shipped with the service.
    password_blocklist: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def token_endpoint(self) -> str:
        return self.issuer.rstrip("/") + "/token"


def _now_ts(clock: Clock) -> float:
    return float(clock.now().timestamp())


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _not_your_token() -> PermissionDenied:
    """A client asked to revoke another client's token (RFC 7009 section 2.1). At the
    endpoint it is ``invalid_grant``: RFC 6749 section 5.2 names a grant "issued to another
    client" so."""
    return PermissionDenied("TOKEN_CLIENT_MISMATCH", "the token was issued to another client")


def _rebinding_needs_aal2() -> PermissionDenied:
    return PermissionDenied(
        "ACR_NOT_MET", "replacing the authenticator needs a login with it (AAL2)",
        metadata={"required_aal": "2"})


def _check_length(value: str, limit: int, field: str) -> None:
    """Refuse values longer than their column (PostgreSQL would fail the insert)."""
    if len(value) > limit:
        raise InvalidArgument("FIELD_TOO_LONG", f"{field} is longer than {limit} characters",
                              field_violations=(FieldViolation(field, f"<= {limit}"),))


def _pairwise_sub(key: bytes, sector_identifier: str, person_id: str) -> str:
    mac = hmac.new(key, f"{sector_identifier}|{person_id}".encode(), hashlib.sha256)
    return "ps-" + mac.hexdigest()[:40]


def _unknown_keks(found: Sequence[UnknownKekCount], box: SecretBox) -> KekUnknown:
    what = "; ".join(f"{c.rows} {c.kind} under KEK {c.kek_id}" for c in found)
    return KekUnknown(
        "KEK_UNKNOWN",
        f"{what}; this process has KEK {', '.join(box.kek_ids)}: give the missing KEK in "
        f"EGOV_IDENTITY_KEK or EGOV_IDENTITY_PREVIOUS_KEKS",
        metadata={"kek_ids": ",".join(sorted({c.kek_id for c in found}))})


def _plain_text(text: str) -> bool:
    return not any(unicodedata.category(ch) in _NOT_PLAIN_TEXT for ch in text)


def _scopes(text: str) -> list[str]:
    seen: list[str] = []
    for s in text.split():
        if s not in seen:
            seen.append(s)
    return seen


def required_aal(acr_values: str = "", claims: Mapping[str, Any] | None = None) -> int:
    """The AAL a login must reach for a request naming authentication context classes in
    ``acr_values`` (space-separated, OIDC Core 3.1.2.1) and/or as an essential ``acr`` of the
    ID token in the parsed ``claims`` parameter (``value`` or ``values``, OIDC Core 5.5.1.1).

    Either way the values are the classes the client accepts, in order of preference, not a
    minimum: any one of them will do, so a login must reach the lowest AAL they name
    (``urn:egov:aal:N`` or ``N``), and the ID token says what it reached. The client accepts
    no class it did not list, so a login below all of them is refused (``ACR_NOT_MET``), not
    answered with another. Asked both ways, both must be met: the higher of the two. A value
    naming no AAL is another framework's class and is ignored; 1 when nothing names one."""
    return max(_lowest_aal(acr_values.split()), _lowest_aal(_essential_acr(claims or {})))


def _lowest_aal(values: Sequence[str]) -> int:
    named = (_ACR_AAL.fullmatch(v) for v in values)
    return max(1, min((int(found[1]) for found in named if found), default=1))


def _essential_acr(claims: Mapping[str, Any]) -> list[str]:
    """The values of an essential ``acr`` of the ID token in a ``claims`` request (none when
    it is voluntary or absent: voluntary is what acr_values says already)."""
    acr = claims.get("id_token")
    acr = acr.get("acr") if isinstance(acr, dict) else None
    if not isinstance(acr, dict) or acr.get("essential") is not True:
        return []
    values: list[Any] = acr["values"] if isinstance(acr.get("values"), list) else [
        acr.get("value")]
    return [v for v in values if isinstance(v, str)]


def _refuse_admin_scopes(scopes: Sequence[str], reason: str) -> None:
    """An admin scope (``identity:admin``, ``keys:admin``) administers a service: a machine
    client's own, by client credentials, never in a token that speaks for a person, whatever
    scopes the client holds. InvalidArgument ``reason`` otherwise."""
    admin = [s for s in scopes if _is_admin_scope(s)]
    if admin:
        raise InvalidArgument(reason, f"{admin[0]} is a machine client's scope, not a person's")


def _is_admin_scope(scope: str) -> bool:
    return scope.endswith(":admin")


def _powers_for(scopes: Sequence[str]) -> set[str]:
    """The powers a representation grant must hold for a token with ``scopes``: signing for
    a ``*:sign`` scope, sealing for a ``*:seal`` scope, registering for a ``registry:`` scope."""
    needed = set()
    for scope in scopes:
        if scope.endswith(":sign"):
            needed.add("sign")
        elif scope.endswith(":seal"):
            needed.add("seal")
        if scope.startswith("registry:"):
            needed.add("register-documents")
    return needed


def _audiences_for(scopes: Sequence[str]) -> list[str]:
    out: list[str] = []
    for s in scopes:
        prefix = s.split(":", 1)[0] if ":" in s else ""
        aud = m.RESOURCE_AUDIENCES.get(prefix)
        if aud and aud not in out:
            out.append(aud)
    return out


class IdentityService:
    """Every identity use case; see the module docstring."""

    def __init__(self, config: IdentityConfig, engine: Engine, clock: Clock, *,
                 registry: CivilRegistry, companies: CompanyRegister,
                 kyc: KycProviders) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.box = SecretBox(config.kek, config.previous_keks)
        self.levels = config.ial_levels
        self.keyring = KeyRing(
            engine, self.box, clock, rotation_seconds=config.key_rotation_seconds,
            publish_ahead_seconds=config.key_publish_ahead_seconds,
            max_token_lifetime_seconds=max(config.access_token_seconds,
                                           config.id_token_seconds) + 60)
        self.passwords = Passwords(time_cost=config.argon2_time_cost,
                                   memory_kib=config.argon2_memory_kib)
        self.password_policy = PasswordPolicy(config.password_blocklist)
        self.throttle = Throttle(engine, config.throttle)
        self.companies = companies
        self.registry = registry
        verifiers: list[EvidenceVerifier] = [
            IdCardChipVerifier(registry), PassportVerifier(registry),
            IdpKycVerifier(kyc, registry, config.issuer), InPersonVerifier(registry),
        ]
        self.verifiers = {v.kind: v for v in verifiers}
        self.hot = HotPath(engine)
        self._client_cache: dict[str, tuple[float, m.Client]] = {}
        # Registered JWKS text -> its parsed keys: a re-registered client's new JWKS is a new
        # entry, which the client cache picks up within CLIENT_CACHE_SECONDS.
        self._client_keys_cache: dict[str, ClientKeys] = {}
        self._pairwise_lock = threading.Lock()
        self._pairwise_key: bytes = config.pairwise_salt
        self._verifiers: dict[frozenset[str], TokenVerifier] = {}
        # A worker forked by egov_common.server (EGOV_IDENTITY_PROCESSES > 1) must not use the
        # parent's pooled connections or locks; see after_fork.
        in_forked_children(self, IdentityService.after_fork)

    def after_fork(self) -> None:
        """In a forked child: drop the pooled connections inherited from the parent without
        closing them under it (the child opens its own) and start with fresh locks. Caches of
        what the database holds (clients, their keys, the signing keys) stay valid."""
        self.engine.dispose(close=False)
        self._pairwise_lock = threading.Lock()
        self._verifiers = {}  # their locks may have been held at the fork
        self.keyring.after_fork()
        self.hot.after_fork()

    def now(self) -> float:
        return _now_ts(self.clock)

    # ------------------------------------------------------------------ secrets at rest
    def check_sealed_values(self) -> None:
        """Start-up check that every sealed value this process will need opens with its KEKs:
        each published signing key is opened, recorded KEK ids are compared with the KEKs
        given, and the pairwise key is loaded. Raises
        :class:`~egov_identity.domain.secrets_box.KekUnknown` (``KEK_UNKNOWN``) naming what is
        sealed under which KEK id, or ``SealedValueUnreadable``; never a crypto traceback."""
        unknown = values_under_unknown_keks(self.engine, self.box)
        if unknown:
            raise _unknown_keks(unknown, self.box)
        opened = self.keyring.check_sealed()
        self.pairwise_key()
        legacy = unrecorded_values(self.engine)
        log.info("sealed values checked", extra={
            "kek_id": self.box.current_kek_id, "kek_ids": ",".join(self.box.kek_ids),
            "signing_keys_opened": opened, "sealed_before_kek_ids": legacy})

    def pairwise_key(self) -> bytes:
        """The HMAC key of pairwise subjects (OIDC Core 8.1). ``EGOV_IDENTITY_PAIRWISE_SALT``
        when set; otherwise a key kept in ``service_secrets``, sealed under the KEK, so that
        pairwise subjects stay the same when the KEK rotates. Before that row existed the key
        was the KEK itself: the first process to need it keeps whichever given KEK reproduces
        the pairwise subjects already handed out (a fresh random key if none were)."""
        if self._pairwise_key:
            return self._pairwise_key
        with self._pairwise_lock:
            if not self._pairwise_key:
                self._pairwise_key = self._load_pairwise_key()
            return self._pairwise_key

    def _load_pairwise_key(self) -> bytes:
        column = t.service_secrets.c
        for _ in range(2):
            with self.engine.connect() as conn:
                blob = conn.execute(sa.select(column.value_enc).where(
                    column.name == PAIRWISE_SALT)).scalar()
            if blob is not None:
                return self.box.open(blob, PAIRWISE_SALT, what=f"service secret {PAIRWISE_SALT}")
            salt = self._salt_of_issued_subjects()
            try:
                with self.engine.begin() as conn:
                    conn.execute(t.service_secrets.insert().values(
                        name=PAIRWISE_SALT, value_enc=self.box.seal(salt, PAIRWISE_SALT),
                        kek_id=self.box.current_kek_id, created_at=self.now()))
            except sa.exc.IntegrityError:
                continue  # another process stored it first: use theirs
            log.info("pairwise subject key stored", extra={"kek_id": self.box.current_kek_id})
            return salt
        raise Internal("PAIRWISE_SALT_UNAVAILABLE", "the pairwise subject key cannot be read")

    def _salt_of_issued_subjects(self) -> bytes:
        with self.engine.connect() as conn:
            aliases = conn.execute(sa.select(t.subject_aliases.c.sub,
                                             t.subject_aliases.c.person_id).limit(50)).all()
            sectors = list(conn.execute(sa.select(t.clients.c.sector_identifier).where(
                t.clients.c.subject_type == m.SubjectType.PAIRWISE.value).distinct()).scalars())
        if not aliases:
            return secrets.token_bytes(32)
        for candidate in (self.config.kek, *self.config.previous_keks):
            for sub, person_id in aliases:
                if any(_pairwise_sub(candidate, sector, person_id) == sub for sector in sectors):
                    return candidate
        raise Internal(
            "PAIRWISE_SALT_UNKNOWN",
            "pairwise subjects were issued under a key none of the KEKs given reproduces: set "
            "EGOV_IDENTITY_PAIRWISE_SALT to it (base64; before KEK rotation it was the KEK)")

    def purge_expired(self, grace_seconds: float = 3600.0, batch: int = 1000) -> int:
        """Delete single-use records and keys well past expiry (any process may run it; the
        deletes are idempotent). Each transaction removes about ``batch`` rows, oldest first
        along the ``expires_at`` index, so the write lock is never held for long. Returns the
        number of rows removed."""
        cutoff = self.now() - grace_seconds
        removed = 0
        for table in (t.used_jtis, t.authorization_codes, t.refresh_tokens,
                      t.login_sessions, t.ciba_requests, t.revoked_access_tokens,
                      t.signing_keys):
            expired = table.c.expires_at < cutoff
            while True:
                with self.engine.begin() as conn:
                    # the expiry of the batch-th oldest expired row bounds this batch
                    bound = conn.execute(
                        sa.select(table.c.expires_at).where(expired)
                        .order_by(table.c.expires_at).offset(batch - 1).limit(1)
                    ).scalar()
                    done = bound is None
                    where = expired if done else table.c.expires_at <= bound
                    removed += conn.execute(table.delete().where(where)).rowcount
                if done:
                    break
        return removed

    # ------------------------------------------------------------------ proofing
    def start_proofing(self, subject: Identifier, target_ial: str) -> m.ProofingSession:
        if not subject.is_natural_person:
            raise InvalidArgument("NAMESPACE_NOT_PERSON", "proofing is for natural persons",
                                  field_violations=(FieldViolation("subject", "TH-PID, PASSPORT"),))
        self.levels.rank(target_ial)
        now = self.now()
        row = dict(session_id=_new_id("prf"), identifier=str(subject), target_ial=target_ial,
                   state=ProofingState.OPEN.value, evidence_json="[]", attributes_json="{}",
                   achieved_ial="", failure_reason="", person_id="", created_at=now,
                   expires_at=now + self.config.proofing_seconds, version=0)
        with self.engine.begin() as conn:
            conn.execute(t.proofing_sessions.insert().values(**row))
        log.info("proofing started", extra={"session_id": row["session_id"],
                                            "subject": subject.masked()})
        return self.get_proofing(str(row["session_id"]))

    def _proofing_row(self, conn: sa.Connection, session_id: str) -> sa.RowMapping:
        row = conn.execute(sa.select(t.proofing_sessions).where(
            t.proofing_sessions.c.session_id == session_id)).mappings().first()
        if row is None:
            raise NotFound("PROOFING_NOT_FOUND", "no such proofing session")
        return row

    def _session_from_row(self, row: sa.RowMapping, enrolment_code: str = ""
                          ) -> m.ProofingSession:
        state = ProofingState(row["state"])
        if state is ProofingState.OPEN and row["expires_at"] <= self.now():
            state = ProofingState.EXPIRED
        return m.ProofingSession(
            session_id=row["session_id"], subject=row["identifier"], target_ial=row["target_ial"],
            state=state, evidence=tuple(EvidenceResult.from_json(e)
                                        for e in json.loads(row["evidence_json"])),
            achieved_ial=row["achieved_ial"], failure_reason=row["failure_reason"],
            created_at=row["created_at"], expires_at=row["expires_at"],
            person_id=row["person_id"], enrolment_code=enrolment_code)

    def get_proofing(self, session_id: str) -> m.ProofingSession:
        with self.engine.connect() as conn:
            return self._session_from_row(self._proofing_row(conn, session_id))

    def _open_session(self, conn: sa.Connection, session_id: str) -> sa.RowMapping:
        row = self._proofing_row(conn, session_id)
        if row["state"] != ProofingState.OPEN.value:
            raise FailedPrecondition("PROOFING_CLOSED", "the proofing session is closed")
        if row["expires_at"] <= self.now():
            raise FailedPrecondition("PROOFING_EXPIRED", "the proofing session has expired")
        return row

    def submit_evidence(self, session_id: str, evidence: Evidence) -> m.ProofingSession:
        with self.engine.connect() as conn:
            row = self._open_session(conn, session_id)
        subject = parse_identifier(row["identifier"])
        verifier = self.verifiers[KIND_OF[type(evidence)]]
        result = verifier.verify(subject, evidence, self.clock.now())
        log.info("evidence checked", extra={"session_id": session_id, "kind": result.kind.value,
                                            "outcome": result.outcome.value,
                                            "reason": result.reason})
        results = [*json.loads(row["evidence_json"]), result.to_json()]
        with self.engine.begin() as conn:
            updated = conn.execute(t.proofing_sessions.update().where(
                t.proofing_sessions.c.session_id == session_id,
                t.proofing_sessions.c.version == row["version"],
                t.proofing_sessions.c.state == ProofingState.OPEN.value,
            ).values(evidence_json=json.dumps(results), version=row["version"] + 1)).rowcount
        if not updated:  # a concurrent submission won; the caller retries
            raise FailedPrecondition("PROOFING_CONCURRENT_UPDATE", "session changed; retry")
        return self.get_proofing(session_id)

    def complete_proofing(self, session_id: str) -> m.ProofingSession:
        """Closes the session with the IAL its evidence reached and records the person, with a
        new enrolment code (shown once) that sets a password. For a person already recorded
        this is account recovery (NIST SP 800-63B 6.1.2.3), at their IAL or above only; every
        authenticator bound before is revoked (see :meth:`_record_proofed_person`). Raises
        ``FailedPrecondition`` (``PROOFING_CLOSED``, ``PROOFING_EXPIRED``,
        ``EVIDENCE_CONFLICT``, ``TARGET_IAL_NOT_REACHED``, ``IAL_BELOW_CURRENT`` with metadata
        ``required_ial``), ``NotFound(PROOFING_NOT_FOUND)``."""
        with self.engine.connect() as conn:
            row = self._open_session(conn, session_id)
        results = [EvidenceResult.from_json(e) for e in json.loads(row["evidence_json"])]
        mismatches = [r for r in results if r.outcome is EvidenceOutcome.MISMATCH]
        strengths = {r.strength for r in results if r.outcome is EvidenceOutcome.VERIFIED}
        achieved = self.levels.cap(ial_from_strengths(strengths)) or self.levels.names[0]
        failure: FailedPrecondition | None = None
        if mismatches:
            failure = FailedPrecondition("EVIDENCE_CONFLICT", "proofing failed",
                                         metadata={"detail": mismatches[0].reason})
        elif self.levels.rank(achieved) < self.levels.rank(row["target_ial"]):
            failure = FailedPrecondition("TARGET_IAL_NOT_REACHED", "proofing failed",
                                         metadata={"detail": achieved})
        else:
            try:
                person_id, code = self._record_proofed_person(row["identifier"], achieved,
                                                              results)
            except FailedPrecondition as below:  # nothing of the person was changed
                failure = FailedPrecondition(below.reason, below.message,
                                             metadata={**below.metadata, "detail": achieved})
        if failure is not None:
            with self.engine.begin() as conn:
                conn.execute(t.proofing_sessions.update().where(
                    t.proofing_sessions.c.session_id == session_id).values(
                    state=ProofingState.FAILED.value, failure_reason=failure.reason,
                    achieved_ial="" if mismatches else achieved))
            raise FailedPrecondition(failure.reason, failure.message,
                                     metadata={**failure.metadata, "session_id": session_id})
        with self.engine.begin() as conn:
            conn.execute(t.proofing_sessions.update().where(
                t.proofing_sessions.c.session_id == session_id).values(
                state=ProofingState.COMPLETED.value, achieved_ial=achieved, person_id=person_id))
            row = self._proofing_row(conn, session_id)
        return self._session_from_row(row, enrolment_code=code)

    def _record_proofed_person(self, identifier: str, ial: str,
                               results: Sequence[EvidenceResult]) -> tuple[str, str]:
        """Records the person proofed at ``ial``; returns (person id, enrolment code).

        A person already recorded is recovering the account or raising their IAL; whoever
        proofed before may not have been them (a national id is all IAL 1.1 takes). So a
        proofing below their IAL changes nothing and raises ``FailedPrecondition
        (IAL_BELOW_CURRENT)`` (metadata ``required_ial``): its code would reset the password
        of a better-proofed person. At or above it, every authenticator bound before is
        revoked (:meth:`_revoke_authenticators`): only what is bound with the new code counts.
        """
        source = self.registry.person(identifier)
        attrs = PersonAttributes(
            given_name_th=source.given_name_th if source else "",
            family_name_th=source.family_name_th if source else "",
            given_name_en=source.given_name_en if source else "",
            family_name_en=source.family_name_en if source else "",
            birth_date=source.birth_date if source else "")
        now = self.now()
        verification = {"trust_framework": TRUST_FRAMEWORK, "assurance_level": ial,
                        "time": dt.datetime.fromtimestamp(now, dt.UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"),
                        "evidence": evidence_summary(results)}
        code = secrets.token_urlsafe(18)
        values = dict(given_name_th=attrs.given_name_th, family_name_th=attrs.family_name_th,
                      given_name_en=attrs.given_name_en, family_name_en=attrs.family_name_en,
                      birth_date=attrs.birth_date, verification_json=json.dumps(verification),
                      verified_at=now, enrolment_code_hash=digest(code))
        revoked: dict[str, int] | None = None
        with self.engine.begin() as conn:
            # Locked (PostgreSQL) until the IAL is compared and written: a concurrent proofing
            # must not slip a lower one in between.
            existing = conn.execute(sa.select(t.persons.c.person_id, t.persons.c.ial).where(
                t.persons.c.identifier == identifier).with_for_update()).first()
            if existing is None:
                person_id = _new_id("p")
                conn.execute(t.persons.insert().values(
                    person_id=person_id, identifier=identifier, ial=ial, created_at=now,
                    totp_confirmed=False, totp_last_step=0, **values))
            else:
                person_id = existing.person_id
                # A level this deployment no longer lists counts as the highest one below it.
                current = self.levels.cap(existing.ial)
                if current is not None and self.levels.rank(ial) < self.levels.rank(current):
                    raise FailedPrecondition(
                        "IAL_BELOW_CURRENT", f"this person is proofed at IAL {current}: only a "
                        f"proofing at that level or above recovers the account",
                        metadata={"required_ial": current})
                conn.execute(t.persons.update().where(t.persons.c.person_id == person_id)
                             .values(ial=ial, **values))
                revoked = self._revoke_authenticators(conn, person_id, now)
        if revoked is not None:
            log.info("authenticators revoked by proofing",
                     extra={"person_id": person_id, "ial": ial, **revoked})
        return person_id, code

    @staticmethod
    def _revoke_authenticators(conn: sa.Connection, person_id: str,
                               now: float) -> dict[str, int]:
        """Within the proofing's transaction: the password, the TOTP seed (bound or not), the
        CIBA devices, the open login sessions, the refresh tokens, unredeemed codes, and CIBA
        requests not yet redeemed (an approval from a revoked device must not yield tokens).
        The login name stays. Access tokens issued with those refresh tokens are refused by
        identity from now on (:meth:`refuse_revoked`); the others live out their minutes.
        Returns how many of each, for the log."""
        p = t.persons.c
        conn.execute(t.persons.update().where(p.person_id == person_id).values(
            password_hash=None, totp_secret_enc=None, totp_kek_id=None, totp_confirmed=False,
            totp_bound=False, totp_last_step=0))
        r, c = t.refresh_tokens.c, t.ciba_requests.c
        return {
            "devices": conn.execute(t.devices.delete().where(
                t.devices.c.person_id == person_id)).rowcount,
            "login_sessions": conn.execute(t.login_sessions.delete().where(
                t.login_sessions.c.person_id == person_id)).rowcount,
            "refresh_tokens": conn.execute(t.refresh_tokens.update().where(
                r.person_id == person_id, r.revoked_at.is_(None)).values(
                revoked_at=now)).rowcount,
            "authorization_codes": conn.execute(t.authorization_codes.delete().where(
                t.authorization_codes.c.person_id == person_id,
                t.authorization_codes.c.used_at.is_(None))).rowcount,
            "ciba_requests": conn.execute(t.ciba_requests.update().where(
                c.person_id == person_id, c.redeemed_at.is_(None),
                c.status.in_(("pending", "approved"))).values(status="denied")).rowcount,
        }

    def _person_in(self, db: HotConnection, person_id: str) -> m.Person:
        row = db.one(self.hot.sql.person, {"person_id": person_id})
        if row is None:
            raise NotFound("PERSON_NOT_FOUND", "no such person")
        return self._person_from_row(row)

    def person(self, person_id: str) -> m.Person:
        row = self.hot.one(self.hot.sql.person, {"person_id": person_id})
        if row is None:
            raise NotFound("PERSON_NOT_FOUND", "no such person")
        return self._person_from_row(row)

    @staticmethod
    def _person_from_row(row: Mapping[Any, Any]) -> m.Person:
        return m.Person(
            person_id=row["person_id"], identifier=row["identifier"],
            attributes=PersonAttributes(row["given_name_th"], row["family_name_th"],
                                        row["given_name_en"], row["family_name_en"],
                                        row["birth_date"]),
            ial=row["ial"], verification=json.loads(row["verification_json"] or "{}"),
            username=row["username"])

    def person_by_identifier(self, identifier: str) -> m.Person | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.persons).where(
                t.persons.c.identifier == identifier)).mappings().first()
        return self._person_from_row(row) if row else None

    # ------------------------------------------------------------------ clients
    def register_client(self, client: m.Client) -> m.Client:
        if not client.client_id:
            client = replace(client, client_id=_new_id("c"))
        _check_length(client.client_id, 128, "client.client_id")
        _check_length(client.client_name, 200, "client.client_name")
        _check_length(client.sector_identifier, 256, "client.sector_identifier")
        unknown = set(client.grant_types) - m.GRANT_TYPES
        if unknown or not client.grant_types:
            raise InvalidArgument("GRANT_TYPE_UNKNOWN", "unknown grant type",
                                  field_violations=(FieldViolation("client.grant_types",
                                                                   "unknown or empty"),))
        for scope in client.scopes:
            prefix, sep, rest = scope.partition(":")
            if scope not in m.PERSON_SCOPES and not (sep and prefix in m.RESOURCE_AUDIENCES
                                                     and rest):
                raise InvalidArgument("SCOPE_UNKNOWN", "unknown scope",
                                      field_violations=(FieldViolation("client.scopes", scope),))
        for uri in client.redirect_uris:
            parsed = urllib.parse.urlsplit(uri)
            loopback = parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost")
            if not (parsed.scheme == "https" or loopback) or parsed.fragment or not parsed.netloc:
                raise InvalidArgument("REDIRECT_URI_INVALID", "redirect URIs must be https",
                                      field_violations=(FieldViolation("client.redirect_uris",
                                                                       "https, no fragment"),))
        if m.GRANT_AUTHORIZATION_CODE in client.grant_types and not client.redirect_uris:
            raise InvalidArgument("REDIRECT_URI_INVALID", "authorization code needs a redirect")
        if client.auth_method not in ("none", "private_key_jwt"):
            raise InvalidArgument("AUTH_METHOD_UNSUPPORTED", "none or private_key_jwt")
        if client.auth_method == "private_key_jwt":
            try:
                if not ClientKeys(client.jwks_json).keys:
                    raise ValueError("empty")
            except Exception as exc:
                raise InvalidArgument("JWKS_INVALID", "client JWKS is not a valid key set",
                                      field_violations=(FieldViolation("client.jwks_json",
                                                                       "JWKS JSON"),)) from exc
        elif set(client.grant_types) & {m.GRANT_CLIENT_CREDENTIALS, m.GRANT_CIBA,
                                        m.GRANT_TOKEN_EXCHANGE}:
            raise InvalidArgument("AUTH_METHOD_UNSUPPORTED",
                                  "this grant type needs private_key_jwt")
        if client.id_token_signed_response_alg not in ID_TOKEN_ALGORITHMS:
            raise InvalidArgument(
                "ID_TOKEN_ALG_UNSUPPORTED", "id_token_signed_response_alg must be one of "
                + ", ".join(ID_TOKEN_ALGORITHMS),
                field_violations=(FieldViolation("client.id_token_signed_response_alg",
                                                 " or ".join(ID_TOKEN_ALGORITHMS)),))
        if client.subject_type is m.SubjectType.PAIRWISE and not client.sector_identifier:
            raise InvalidArgument("SECTOR_IDENTIFIER_INVALID", "pairwise needs a sector")
        if client.agency:
            agency = parse_identifier(client.agency, field="client.agency")
            if agency.namespace is not Namespace.TH_JUR:
                raise InvalidArgument("NAMESPACE_NOT_JURISTIC", "an agency is TH-JUR")
        try:
            with self.engine.begin() as conn:
                conn.execute(t.clients.insert().values(
                    client_id=client.client_id, client_name=client.client_name,
                    redirect_uris_json=json.dumps(list(client.redirect_uris)),
                    grant_types_json=json.dumps(list(client.grant_types)),
                    scopes_json=json.dumps(list(client.scopes)), auth_method=client.auth_method,
                    jwks_json=client.jwks_json, subject_type=client.subject_type.value,
                    sector_identifier=client.sector_identifier, agency=client.agency,
                    id_token_signed_response_alg=client.id_token_signed_response_alg,
                    created_at=self.now()))
        except sa.exc.IntegrityError:
            raise AlreadyExists("CLIENT_EXISTS", "a client with this id exists") from None
        return client

    def get_client(self, client_id: str) -> m.Client:
        """The registered client (cached per process for ``CLIENT_CACHE_SECONDS``: a changed
        registration reaches every process within that time). Raises ``NotFound``."""
        cached = self._client_cache.get(client_id)
        if cached is not None and time.monotonic() - cached[0] < CLIENT_CACHE_SECONDS:
            return cached[1]
        client = self._load_client(client_id)
        if len(self._client_cache) > 10_000:
            self._client_cache.clear()
        self._client_cache[client_id] = (time.monotonic(), client)
        return client

    def _client_keys(self, client: m.Client) -> ClientKeys:
        """The client's registered JWKS, parsed once per JWKS text."""
        cached = self._client_keys_cache.get(client.jwks_json)
        if cached is None:
            cached = ClientKeys(client.jwks_json)
            if len(self._client_keys_cache) > 10_000:
                self._client_keys_cache.clear()
            self._client_keys_cache[client.jwks_json] = cached
        return cached

    def _load_client(self, client_id: str) -> m.Client:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.clients).where(
                t.clients.c.client_id == client_id)).mappings().first()
        if row is None:
            raise NotFound("CLIENT_NOT_FOUND", "no such client")
        return m.Client(
            client_id=row["client_id"], client_name=row["client_name"],
            redirect_uris=tuple(json.loads(row["redirect_uris_json"])),
            grant_types=tuple(json.loads(row["grant_types_json"])),
            scopes=tuple(json.loads(row["scopes_json"])), auth_method=row["auth_method"],
            jwks_json=row["jwks_json"], subject_type=m.SubjectType(row["subject_type"]),
            sector_identifier=row["sector_identifier"], agency=row["agency"],
            id_token_signed_response_alg=row["id_token_signed_response_alg"])

    def authenticate_client(self, client_id: str, assertion: str = "",
                            assertion_type: str = "") -> m.Client:
        """RFC 7523 private_key_jwt (or a public client with no secret). Raises
        ``Unauthenticated(INVALID_CLIENT)``; repeated failures lock the client id."""
        now = self.now()
        if assertion and not client_id:
            try:
                iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
            except jwt.PyJWTError:
                iss = None
            # Unverified: only a name a client could have (no NUL, which PostgreSQL refuses).
            client_id = iss if isinstance(iss, str) and "\x00" not in iss else ""
        try:
            client = self.get_client(client_id)
            if client.auth_method == "none":
                if assertion:
                    raise ValueError("a public client sends no assertion")
                return client
            if assertion_type and assertion_type != m.CLIENT_ASSERTION_TYPE:
                raise jwt.InvalidTokenError("assertion type")
            self._verify_client_assertion(client, assertion, now)
            return client
        except (NotFound, jwt.PyJWTError, ValueError, KeyError, StopIteration,
                sa.exc.IntegrityError):
            # Only failures are throttled: a key-authenticated client cannot be guessed, and
            # checking on success would let an attacker lock a legitimate client out.
            self.throttle.check(client_key(client_id), now, "CLIENT_LOCKED")
            self.throttle.fail(client_key(client_id), now)
            raise Unauthenticated("INVALID_CLIENT", "client authentication failed") from None

    def _verify_client_assertion(self, client: m.Client, assertion: str, now: float) -> None:
        """See :mod:`~egov_identity.domain.client_assertions`; then the ``jti`` is recorded,
        so a replay fails on the primary key (``IntegrityError``), in any process."""
        claims = verify_assertion(
            assertion, self._client_keys(client), client_id=client.client_id,
            audiences=(self.config.issuer, self.config.token_endpoint), now=now,
            leeway=self.config.leeway_seconds)
        used = {"issuer": client.client_id[:128], "jti": claims["jti"][:128],
                "expires_at": replay_window_end(claims)}
        # jti single use (RFC 7523 section 3)
        self.hot.commit(lambda db: db.run(self.hot.sql.insert_jti, used))

    # ------------------------------------------------------------------ subjects
    def subject_for(self, person_id: str, client: m.Client,
                    conn: sa.Connection | None = None) -> str:
        """``sub`` for ``client``: the person id (public) or an HMAC per sector (pairwise,
        remembered so tokens presented back resolve to the person)."""
        if client.subject_type is m.SubjectType.PUBLIC:
            return person_id
        sub = _pairwise_sub(self.pairwise_key(), client.sector_identifier, person_id)
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(self.engine.begin())
            known = conn.execute(sa.select(t.subject_aliases.c.sub).where(
                t.subject_aliases.c.sub == sub)).first()
            if known is None:
                try:
                    with conn.begin_nested():
                        conn.execute(t.subject_aliases.insert().values(sub=sub,
                                                                       person_id=person_id))
                except sa.exc.IntegrityError:
                    pass  # another process recorded it first
        return sub

    def person_id_for_subject(self, sub: str) -> str | None:
        if not sub.startswith("ps-"):
            return sub
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(t.subject_aliases.c.person_id).where(
                t.subject_aliases.c.sub == sub)).scalar()
        return str(value) if value else None

    # ------------------------------------------------------------------ passwords, TOTP, login
    def set_password(self, person_id: str, new_password: str, *, enrolment_code: str = "",
                     login_session_id: str = "", username: str = "") -> str:
        """Set the password (stored NFKC-normalised, Argon2id) and the login name; returns the
        login name. The password must pass :mod:`~egov_identity.domain.password_policy`: what
        needs nothing about the person is checked first, what does (name, identifier, birth
        date) only once the enrolment code or session is accepted. Raises ``InvalidArgument``
        (``PASSWORD_TOO_SHORT``, ``PASSWORD_TOO_LONG``, ``PASSWORD_REPETITIVE``,
        ``PASSWORD_BREACHED``, ``PASSWORD_CONTEXT``, ``FIELD_TOO_LONG``),
        ``NotFound(PERSON_NOT_FOUND)``, ``PermissionDenied(ENROLMENT_CODE_INVALID)``,
        ``AlreadyExists(USERNAME_TAKEN)``."""
        try:
            password = self.password_policy.check(new_password)
        except InvalidArgument as exc:
            log.info("password refused", extra={"person_id": person_id, "reason": exc.reason,
                                                **exc.metadata})
            raise
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.persons).where(
                t.persons.c.person_id == person_id)).mappings().first()
        if row is None:
            raise NotFound("PERSON_NOT_FOUND", "no such person")
        if login_session_id:
            session = self.login_session(login_session_id)
            if session.person_id != person_id:
                raise PermissionDenied("ENROLMENT_CODE_INVALID", "not this person's session")
        elif not (enrolment_code and row["enrolment_code_hash"] and hmac.compare_digest(
                digest(enrolment_code), row["enrolment_code_hash"])):
            raise PermissionDenied("ENROLMENT_CODE_INVALID", "enrolment code is not valid")
        name = (username or row["username"] or person_id).strip()
        _check_length(name, 128, "username")
        context = PasswordContext(
            login_names=tuple(n for n in (name, row["username"] or "") if n),
            name_parts=tuple(row[c] or "" for c in ("given_name_en", "family_name_en",
                                                    "given_name_th", "family_name_th")),
            identifier=row["identifier"], birth_date=row["birth_date"] or "")
        try:
            self.password_policy.check_personal(password, context)
        except InvalidArgument as exc:
            log.info("password refused", extra={"person_id": person_id, "reason": exc.reason,
                                                **exc.metadata})
            raise
        try:
            with self.engine.begin() as conn:
                conn.execute(t.persons.update().where(t.persons.c.person_id == person_id).values(
                    username=name, password_hash=self.passwords.hash(password),
                    enrolment_code_hash=None))
        except sa.exc.IntegrityError:
            raise AlreadyExists("USERNAME_TAKEN", "choose another login name") from None
        log.info("password set", extra={"person_id": person_id})
        return name

    @staticmethod
    def _may_bind_totp(session: m.LoginSession) -> sa.ColumnElement[bool]:
        """The condition on the person's row under which ``session`` may enrol or confirm a
        TOTP authenticator. Once one is bound, binding another needs a login with it (AAL2,
        NIST SP 800-63B 6.1.2.1): the password alone must not replace it. Whoever lost it
        recovers the account by proofing again (see :meth:`complete_proofing`)."""
        person = t.persons.c.person_id == session.person_id
        return person if session.aal >= 2 else sa.and_(person, sa.not_(t.persons.c.totp_bound))

    def enrol_totp(self, login_session_id: str) -> str:
        """A new TOTP seed for the session's person (the otpauth URI, shown once); it counts
        once :meth:`confirm_totp` has seen a code of it. Raises ``Unauthenticated
        (LOGIN_REQUIRED)``, ``PermissionDenied(ACR_NOT_MET)`` when an authenticator is bound
        and the session is not AAL2."""
        session = self.login_session(login_session_id)
        secret = secrets.token_bytes(20)
        with self.engine.begin() as conn:
            enrolled = conn.execute(t.persons.update().where(self._may_bind_totp(session))
                                    .values(totp_secret_enc=self.box.seal(secret,
                                                                          session.person_id),
                                            totp_kek_id=self.box.current_kek_id,
                                            totp_confirmed=False, totp_last_step=0)).rowcount
        if not enrolled:
            raise _rebinding_needs_aal2()
        person = self.person(session.person_id)
        return otpauth_uri(secret, person.username or person.person_id, "egov-trust")

    def confirm_totp(self, login_session_id: str, code: str) -> None:
        """Binds the seed of :meth:`enrol_totp` with a current code of it. Raises
        ``Unauthenticated(LOGIN_REQUIRED)``, ``PermissionDenied(ACR_NOT_MET)`` as
        :meth:`enrol_totp`, ``InvalidArgument(TOTP_INVALID)``."""
        session = self.login_session(login_session_id)
        with self.engine.connect() as conn:
            allowed = conn.execute(sa.select(t.persons.c.person_id).where(
                self._may_bind_totp(session))).first()
        if allowed is None:  # before the code is tried: no oracle for codes either
            raise _rebinding_needs_aal2()
        if not self._consume_totp(session.person_id, code, require_confirmed=False):
            raise InvalidArgument("TOTP_INVALID", "the code does not match",
                                  field_violations=(FieldViolation("code", "current code"),))
        with self.engine.begin() as conn:
            bound = conn.execute(t.persons.update().where(self._may_bind_totp(session))
                                 .values(totp_confirmed=True, totp_bound=True)).rowcount
        if not bound:
            raise _rebinding_needs_aal2()
        log.info("authenticator bound", extra={"person_id": session.person_id,
                                               "aal": session.aal})

    def _consume_totp(self, person_id: str, code: str, *, require_confirmed: bool) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.persons.c.totp_secret_enc, t.persons.c.totp_confirmed)
                               .where(t.persons.c.person_id == person_id)).first()
        if row is None or row.totp_secret_enc is None:
            return False
        if require_confirmed and not row.totp_confirmed:
            return False
        seed = self.box.open(row.totp_secret_enc, person_id,
                             what=f"TOTP seed of person {person_id}")
        step = totp_matching_step(seed, code, self.now())
        if step is None:
            return False
        with self.engine.begin() as conn:  # each code once (RFC 6238 section 5.2)
            return bool(conn.execute(t.persons.update().where(
                t.persons.c.person_id == person_id, t.persons.c.totp_last_step < step,
            ).values(totp_last_step=step)).rowcount)

    def login(self, client_id: str, username: str, password: str,
              totp_code: str = "") -> m.LoginSession:
        """Password (+ TOTP for AAL2). Every failure is ``CREDENTIALS_INVALID``; locked names
        and clients get ``RESOURCE_EXHAUSTED`` (``ACCOUNT_LOCKED`` / ``CLIENT_LOCKED``)."""
        now = self.now()
        self.throttle.check(client_key(client_id), now, "CLIENT_LOCKED")
        self.throttle.check(account_key(username), now, "ACCOUNT_LOCKED")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.persons.c.person_id, t.persons.c.password_hash)
                               .where(t.persons.c.username == username.strip())).first()
        # Stored NFKC-normalised; a hash made before normalisation still verifies as typed.
        typed = normalise(password)
        ok = self.passwords.verify(row.password_hash if row else None, typed) or (
            typed != password and self.passwords.verify(row.password_hash if row else None,
                                                        password))
        aal, amr = 1, ["pwd"]
        if ok and row is not None and totp_code:
            ok = self._consume_totp(row.person_id, totp_code, require_confirmed=True)
            aal, amr = 2, ["pwd", "otp", "mfa"]
        if not ok or row is None:
            self.throttle.fail(account_key(username), now)
            self.throttle.fail(client_key(client_id), now)
            # No login name in logs (it may be an identifier); the account key is a hash.
            log.info("login failed", extra={"client_id": client_id,
                                            "account": account_key(username)[8:20]})
            raise Unauthenticated("CREDENTIALS_INVALID", "login name, password or code is wrong")
        self.throttle.reset(account_key(username))
        log.info("login", extra={"client_id": client_id, "person_id": row.person_id,
                                 "aal": aal})
        return self._new_login_session(row.person_id, client_id, aal, amr, now)

    def _new_login_session(self, person_id: str, client_id: str, aal: int, amr: list[str],
                           now: float) -> m.LoginSession:
        session_id = secrets.token_urlsafe(32)
        expires = now + self.config.login_session_seconds
        with self.engine.begin() as conn:
            conn.execute(t.login_sessions.insert().values(
                session_hash=digest(session_id), person_id=person_id, client_id=client_id,
                aal=aal, amr_json=json.dumps(amr), auth_time=now, expires_at=expires))
        return m.LoginSession(session_id, person_id, aal, tuple(amr), now, expires)

    def login_session(self, login_session_id: str) -> m.LoginSession:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.login_sessions).where(
                t.login_sessions.c.session_hash == digest(login_session_id))).mappings().first()
        if row is None or row["expires_at"] <= self.now():
            raise Unauthenticated("LOGIN_REQUIRED", "log in first")
        return m.LoginSession(login_session_id, row["person_id"], row["aal"],
                              tuple(json.loads(row["amr_json"])), row["auth_time"],
                              row["expires_at"])

    # ------------------------------------------------------------------ authorize + code
    def authorization_request(self, *, client_id: str, redirect_uri: str, scope: str,
                              state: str = "", nonce: str = "", code_challenge: str = "",
                              code_challenge_method: str = "", acr_values: str = "",
                              claims: str = "") -> m.AuthorizationRequest:
        """Checks an authorization request before anyone logs in, so that nobody is asked to
        log in for a request that cannot succeed (OIDC Core 3.1.2.2); the authorization
        endpoint checks the request this way before it shows the login form and again when
        the login comes back with it. Raises ``InvalidArgument`` (``CLIENT_UNKNOWN``,
        ``REDIRECT_URI_MISMATCH``, ``UNAUTHORIZED_CLIENT``, ``PKCE_REQUIRED``,
        ``PKCE_METHOD_UNSUPPORTED``, ``SCOPE_INVALID``, ``FIELD_TOO_LONG``,
        ``CLAIMS_INVALID``) and ``PermissionDenied(ACR_NOT_MET)`` (metadata ``required_aal``)
        when no login here reaches what it asks for
        (:data:`~egov_identity.domain.levels.AAL_LEVELS`)."""
        try:
            client = self.get_client(client_id)
        except NotFound:
            raise InvalidArgument("CLIENT_UNKNOWN", "unknown client") from None
        if redirect_uri not in client.redirect_uris:
            raise InvalidArgument("REDIRECT_URI_MISMATCH", "redirect URI is not registered")
        if m.GRANT_AUTHORIZATION_CODE not in client.grant_types:
            raise InvalidArgument("UNAUTHORIZED_CLIENT", "client may not use the code flow")
        if not code_challenge:
            raise InvalidArgument("PKCE_REQUIRED", "code_challenge is required")
        if code_challenge_method != "S256":
            raise InvalidArgument("PKCE_METHOD_UNSUPPORTED", "only S256 is supported")
        if not _S256_CHALLENGE.fullmatch(code_challenge):
            raise InvalidArgument("PKCE_REQUIRED", "code_challenge is malformed")
        scopes = _scopes(scope)
        if "openid" not in scopes or not set(scopes) <= set(client.scopes):
            raise InvalidArgument("SCOPE_INVALID", "scope must include openid and be allowed")
        _refuse_admin_scopes(scopes, "SCOPE_INVALID")
        _check_length(nonce, 256, "nonce")
        claims_request: dict[str, Any] = {}
        if claims:
            try:
                claims_request = json.loads(claims)
                if not isinstance(claims_request, dict):
                    raise ValueError
            except (ValueError, RecursionError):  # RecursionError: nested too deep
                raise InvalidArgument("CLAIMS_INVALID", "claims must be a JSON object") from None
        required = required_aal(acr_values, claims_request)
        if required > max(AAL_LEVELS):
            raise PermissionDenied("ACR_NOT_MET", f"no login here reaches AAL{required}",
                                   metadata={"required_aal": str(required)})
        return m.AuthorizationRequest(
            client=client, redirect_uri=redirect_uri, scopes=tuple(scopes), state=state,
            nonce=nonce, code_challenge=code_challenge, claims=claims, required_aal=required,
            wants_verified_claims=any(self._wants_verified(scopes, claims, where)
                                      for where in ("id_token", "userinfo")))

    def issue_code(self, login_session_id: str,
                   request: m.AuthorizationRequest) -> m.AuthorizationResult:
        """The code for ``request`` (from :meth:`authorization_request`) after the login of
        ``login_session_id``, and where to send the person with it. Raises
        ``Unauthenticated(LOGIN_REQUIRED)``, ``PermissionDenied(ACR_NOT_MET)`` (metadata
        ``required_aal``) when the login did not reach what the request needs."""
        session = self.login_session(login_session_id)
        if session.aal < request.required_aal:
            raise PermissionDenied("ACR_NOT_MET", "a stronger login is required",
                                   metadata={"required_aal": str(request.required_aal)})
        code = secrets.token_urlsafe(32)
        now = self.now()
        with self.engine.begin() as conn:
            conn.execute(t.authorization_codes.insert().values(
                code_hash=digest(code), client_id=request.client.client_id,
                redirect_uri=request.redirect_uri, person_id=session.person_id,
                scope=" ".join(request.scopes), nonce=request.nonce,
                code_challenge=request.code_challenge, claims_json=request.claims,
                aal=session.aal, amr_json=json.dumps(list(session.amr)),
                auth_time=session.auth_time, expires_at=now + self.config.code_seconds))
        params = {"code": code, "iss": self.config.issuer}
        if request.state:
            params["state"] = request.state
        sep = "&" if urllib.parse.urlsplit(request.redirect_uri).query else "?"
        return m.AuthorizationResult(code, request.redirect_uri + sep
                                     + urllib.parse.urlencode(params))

    def authorize(self, *, login_session_id: str, client_id: str, redirect_uri: str, scope: str,
                  state: str = "", nonce: str = "", code_challenge: str = "",
                  code_challenge_method: str = "", acr_values: str = "",
                  claims: str = "") -> m.AuthorizationResult:
        """:meth:`authorization_request` then :meth:`issue_code` (gRPC ``Authorize``)."""
        return self.issue_code(login_session_id, self.authorization_request(
            client_id=client_id, redirect_uri=redirect_uri, scope=scope, state=state,
            nonce=nonce, code_challenge=code_challenge,
            code_challenge_method=code_challenge_method, acr_values=acr_values, claims=claims))

    # ------------------------------------------------------------------ token endpoint
    def token(self, request: m.TokenRequest) -> m.TokenResponse:
        grant = request.grant_type
        if grant not in m.GRANT_TYPES:
            raise InvalidArgument("UNSUPPORTED_GRANT_TYPE", "grant type not supported")
        client = self.authenticate_client(request.client_id, request.client_assertion,
                                          request.client_assertion_type)
        if grant not in client.grant_types:
            raise InvalidArgument("UNAUTHORIZED_CLIENT", "client may not use this grant type")
        if grant == m.GRANT_AUTHORIZATION_CODE:
            return self._grant_code(client, request)
        if grant == m.GRANT_REFRESH_TOKEN:
            return self._grant_refresh(client, request)
        if grant == m.GRANT_CLIENT_CREDENTIALS:
            return self._grant_client_credentials(client, request)
        if grant == m.GRANT_CIBA:
            return self._grant_ciba(client, request)
        return self._grant_token_exchange(client, request)

    def _grant_code(self, client: m.Client, request: m.TokenRequest) -> m.TokenResponse:
        """Code exchange (RFC 6749 section 4.1.3, PKCE RFC 7636). The code is consumed and the
        refresh token it yields stored in ONE transaction, by a conditional UPDATE whose row
        count decides (two processes cannot both redeem a code). A wrong redirect URI or PKCE
        verifier burns the code too. Presenting a redeemed code again revokes the refresh
        tokens and the access token it produced (sections 4.1.2 and 10.5). The tokens are
        signed before that transaction, so it holds the database's write lock for two
        statements only, and nothing is handed out unless it commits."""
        now = self.now()
        code_hash = digest(request.code)
        sql = self.hot.sql
        with self.hot.connect() as db:
            row = db.one(sql.code, {"code_hash": code_hash})
            if row is None or row["client_id"] != client.client_id:
                raise InvalidArgument("INVALID_GRANT", "code is invalid or expired")
            if row["used_at"] is not None:  # a replay whenever it comes, expired or not
                self._code_replayed(db, row, now)
            if row["expires_at"] <= now:
                raise InvalidArgument("INVALID_GRANT", "code is invalid or expired")
            redirect_ok = request.redirect_uri == row["redirect_uri"]
            pkce_ok = bool(_PKCE_VERIFIER.fullmatch(request.code_verifier)) and hmac.compare_digest(
                _b64url(hashlib.sha256(request.code_verifier.encode()).digest()),
                row["code_challenge"])
            family_id = _new_id("fam")
            access_jti = secrets.token_urlsafe(16)
            tokens: m.TokenResponse | None = None
            successor: dict[str, Any] | None = None
            if redirect_ok and pkce_ok:
                tokens, successor = self._person_tokens(
                    client, self._person_in(db, row["person_id"]), row["scope"].split(),
                    aal=row["aal"], amr=json.loads(row["amr_json"]),
                    auth_time=row["auth_time"], nonce=row["nonce"],
                    claims_request=row["claims_json"], family_id=family_id, jti=access_jti)
            def redeem(write: HotConnection) -> int:
                consumed = write.run(sql.consume_code, {
                    "code_hash": code_hash, "now": now,
                    "family_id": family_id if successor is not None else None,
                    "access_jti": access_jti if tokens is not None else None})
                if consumed == 1 and successor is not None:
                    write.run(sql.insert_refresh, successor)
                return consumed

            consumed = db.commit(redeem)
            if consumed != 1:  # redeemed by another request since it was read
                self._code_replayed(db, db.one(sql.code, {"code_hash": code_hash}), now)
        if not redirect_ok:
            raise InvalidArgument("INVALID_GRANT", "redirect URI differs")
        if tokens is None:
            raise InvalidArgument("INVALID_GRANT", "PKCE verification failed")
        return tokens

    def _code_replayed(self, db: HotConnection, code: Mapping[str, Any] | None,
                       now: float) -> NoReturn:
        # RFC 6749 sections 4.1.2 and 10.5: a code used twice revokes what it was exchanged
        # for, the refresh token family and the access token.
        if code is not None and code["family_id"]:
            revoke = {"family_id": code["family_id"], "now": now}
            db.commit(lambda write: write.run(self.hot.sql.revoke_family, revoke))
        if code is not None and code["access_jti"]:
            # It expires no later than one lifetime from now; revoked once (a third
            # presentation finds it revoked already).
            revoked = {"jti": code["access_jti"],
                       "expires_at": now + self.config.access_token_seconds}
            with contextlib.suppress(sa.exc.IntegrityError):
                db.commit(lambda write: write.run(self.hot.sql.revoke_access, revoked))
        raise InvalidArgument("INVALID_GRANT", "code was already used")

    def _grant_refresh(self, client: m.Client, request: m.TokenRequest) -> m.TokenResponse:
        """Refresh with rotation (RFC 9700 section 4.14.2): the presented token is consumed and
        its successor stored in ONE transaction, by a conditional UPDATE (neither used nor
        revoked) whose row count decides, so two processes on one database cannot both rotate
        it; presenting a consumed token again revokes the whole family (the legitimate holder
        and a thief cannot both continue). The tokens are signed before that transaction:
        it holds the write lock for two statements, and nothing is handed out unless it
        commits."""
        now = self.now()
        token_hash = digest(request.refresh_token)
        sql = self.hot.sql
        with self.hot.connect() as db:
            row = db.one(sql.refresh_token, {"token_hash": token_hash})
            if row is None or row["client_id"] != client.client_id:
                raise InvalidArgument("INVALID_GRANT", "refresh token is invalid")
            if row["revoked_at"] is not None or row["expires_at"] <= now:
                raise InvalidArgument("INVALID_GRANT", "refresh token is revoked or expired")
            scopes = row["scope"].split()
            if request.scope:
                asked = _scopes(request.scope)
                if not set(asked) <= set(scopes):
                    raise InvalidArgument("INVALID_SCOPE", "scope exceeds the original grant")
                scopes = asked
            if row["used_at"] is None:
                tokens, successor = self._person_tokens(
                    client, self._person_in(db, row["person_id"]), scopes, aal=row["aal"],
                    amr=json.loads(row["amr_json"]), auth_time=row["auth_time"], nonce="",
                    claims_request=row["claims_json"], family_id=row["family_id"])
                if successor is not None:  # RFC 6749 section 6: the grant's scope, not this one
                    successor["scope"] = row["scope"]
                def rotate(write: HotConnection) -> int:
                    consumed = write.run(sql.consume_refresh,
                                         {"token_hash": token_hash, "now": now})
                    if consumed == 1 and successor is not None:
                        write.run(sql.insert_refresh, successor)
                    return consumed

                consumed = db.commit(rotate)
                if consumed == 1:
                    return tokens
                # Used or revoked by another request since it was read.
                latest = db.one(sql.refresh_token, {"token_hash": token_hash})
                if latest is None or latest["used_at"] is None:
                    raise InvalidArgument("INVALID_GRANT", "refresh token is revoked or expired")
            # Reuse of a rotated token: someone holds a stolen copy. Revoke the whole family.
            revoke = {"family_id": row["family_id"], "now": now}
            db.commit(lambda write: write.run(sql.revoke_family, revoke))
        log.warning("refresh token reuse detected; family revoked",
                    extra={"client_id": client.client_id})
        raise InvalidArgument("INVALID_GRANT", "refresh token was already used")

    def _grant_client_credentials(self, client: m.Client,
                                  request: m.TokenRequest) -> m.TokenResponse:
        allowed = [s for s in client.scopes if s not in m.PERSON_SCOPES]
        scopes = _scopes(request.scope) if request.scope else allowed
        if not scopes or not set(scopes) <= set(allowed):
            raise InvalidArgument("INVALID_SCOPE", "scope not allowed for this client")
        now = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.config.issuer, "sub": client.client_id,
            "aud": _audiences_for(scopes) or [self.config.issuer], "iat": now,
            "exp": now + self.config.access_token_seconds, "jti": secrets.token_urlsafe(16),
            "client_id": client.client_id, "scope": " ".join(scopes)}
        if client.agency:
            claims["agency"] = client.agency
        token = self.keyring.sign(claims, typ=ACCESS_TOKEN_TYPE)
        return m.TokenResponse(token, self.config.access_token_seconds, " ".join(scopes))

    def _userinfo_claims(self, person: m.Person, client: m.Client, scopes: Sequence[str],
                         want_verified: bool) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        a = person.attributes
        if "profile" in scopes:
            claims.update({
                "name": f"{a.given_name_en} {a.family_name_en}".strip(),
                "given_name": a.given_name_en, "family_name": a.family_name_en,
                "given_name#th": a.given_name_th, "family_name#th": a.family_name_th,
                "birthdate": a.birth_date})
        if "identifier" in scopes:
            claims["identifier"] = person.identifier
        if want_verified and person.verification:
            # The civil registry's names in both languages (Thai as OIDC Core 5.2 language
            # tags): keys certifies only names verified here, and a Thai citizen's are Thai.
            verified = {"given_name": a.given_name_en, "family_name": a.family_name_en,
                        "given_name#th": a.given_name_th, "family_name#th": a.family_name_th,
                        "birthdate": a.birth_date}
            claims["verified_claims"] = {
                "verification": person.verification,
                "claims": {k: v for k, v in verified.items() if v},
            }
        return claims

    @staticmethod
    def _wants_verified(scopes: Sequence[str], claims_request: str, where: str) -> bool:
        if "verified_claims" in scopes:
            return True
        if not claims_request:
            return False
        try:
            part = json.loads(claims_request).get(where) or {}
        except (ValueError, AttributeError):
            return False
        return isinstance(part, dict) and "verified_claims" in part

    def _issue_person_tokens(self, client: m.Client, person_id: str, scopes: list[str], *,
                             aal: int, amr: list[str], auth_time: float, nonce: str,
                             claims_request: str, family_id: str | None) -> m.TokenResponse:
        """:meth:`_person_tokens`, with the refresh token stored."""
        tokens, refresh_row = self._person_tokens(
            client, self.person(person_id), scopes, aal=aal, amr=amr, auth_time=auth_time,
            nonce=nonce, claims_request=claims_request, family_id=family_id)
        if refresh_row is not None:
            stored = refresh_row
            self.hot.commit(lambda db: db.run(self.hot.sql.insert_refresh, stored))
        return tokens

    def _person_tokens(self, client: m.Client, person: m.Person, scopes: list[str], *,
                       aal: int, amr: list[str], auth_time: float, nonce: str,
                       claims_request: str, family_id: str | None, jti: str = ""
                       ) -> tuple[m.TokenResponse, dict[str, Any] | None]:
        """The signed access (and, with ``openid``, ID) token of a person, and the row of the
        refresh token that comes with them, for the caller to store (``None`` when the client
        has no refresh grant): the tokens are only valid once it is stored. ``jti``: the
        access token's id (a fresh one when empty)."""
        person_id = person.person_id
        now = int(self.now())
        sub = self.subject_for(person_id, client)
        access_claims: dict[str, Any] = {
            "iss": self.config.issuer, "sub": sub,
            "aud": [self.config.issuer, *_audiences_for(scopes)], "iat": now,
            "exp": now + self.config.access_token_seconds,
            "jti": jti or secrets.token_urlsafe(16), "client_id": client.client_id,
            "scope": " ".join(scopes), "auth_time": int(auth_time), "acr": acr_for_aal(aal),
            "amr": amr}
        if "identifier" in scopes:
            access_claims["identifier"] = person.identifier
        if self._wants_verified(scopes, claims_request, "userinfo") and person.ial:
            access_claims["verified_claims"] = {"verification": {
                "trust_framework": TRUST_FRAMEWORK, "assurance_level": person.ial}}
        access_token = self.keyring.sign(access_claims, typ=ACCESS_TOKEN_TYPE)
        id_token = ""
        if "openid" in scopes:
            digest_bytes = hashlib.sha256(access_token.encode()).digest()
            id_claims: dict[str, Any] = {
                "iss": self.config.issuer, "sub": sub, "aud": client.client_id,
                "azp": client.client_id, "iat": now, "exp": now + self.config.id_token_seconds,
                "auth_time": int(auth_time), "acr": acr_for_aal(aal), "amr": amr,
                "at_hash": _b64url(digest_bytes[:16])}
            if nonce:
                id_claims["nonce"] = nonce
            id_claims.update(self._userinfo_claims(
                person, client, scopes, self._wants_verified(scopes, claims_request, "id_token")))
            id_token = self.keyring.sign(id_claims, alg=client.id_token_signed_response_alg)
        refresh = ""
        refresh_row: dict[str, Any] | None = None
        if m.GRANT_REFRESH_TOKEN in client.grant_types:
            refresh = secrets.token_urlsafe(32)
            refresh_row = {
                "token_hash": digest(refresh), "family_id": family_id or _new_id("fam"),
                "client_id": client.client_id, "person_id": person_id, "scope": " ".join(scopes),
                "claims_json": claims_request, "aal": aal, "amr_json": json.dumps(amr),
                "auth_time": auth_time, "expires_at": now + self.config.refresh_token_seconds,
                "used_at": None, "revoked_at": None, "access_jti": access_claims["jti"]}
        return m.TokenResponse(access_token, self.config.access_token_seconds, " ".join(scopes),
                               refresh_token=refresh, id_token=id_token), refresh_row

    # ------------------------------------------------------------------ verification of own tokens
    def verifier(self, audiences: Sequence[str]) -> TokenVerifier:
        """The verifier of our own tokens for ``audiences``, kept from call to call so that it
        remembers the tokens it verified (userinfo, introspection and token exchange see the
        same token many times). It reads the keyring's keys at each call, so a remembered token
        fails as soon as its key is no longer published; its dates are checked every time."""
        key = frozenset(audiences)
        verifier = self._verifiers.get(key)
        if verifier is None:
            # Audience sets are ours and our clients' (at most one client each), so few; the
            # oldest makes way for a new one all the same.
            while len(self._verifiers) >= _MAX_VERIFIERS:
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                    del self._verifiers[next(iter(self._verifiers))]
            verifier = self._verifiers.setdefault(key, TokenVerifier(
                self.keyring, issuer=self.config.issuer, audiences=audiences,
                leeway_seconds=self.config.leeway_seconds, clock=self.now))
        return verifier

    def verify_access_token(self, token: str, audience: str | None = None) -> VerifiedToken:
        """Verify one of our access tokens and check it was not revoked."""
        verified = self.verifier([audience or self.config.issuer]).verify(token)
        if verified.token_type != ACCESS_TOKEN_TYPE:
            raise Unauthenticated("TOKEN_TYPE_MISMATCH", "an access token is required")
        self.refuse_revoked(verified.claims.get("jti"))
        return verified

    def refuse_revoked(self, jti: object) -> None:
        """``Unauthenticated(TOKEN_REVOKED)`` when the access token with this ``jti`` was
        revoked (RFC 7009): revoked itself, or issued with a refresh token since revoked (its
        family revoked at ``/revoke``, on reuse, on a replayed code or by a proofing that
        recovered the account; RFC 7009 section 2.1). Identity keeps both, so everything of
        identity that takes an access token (userinfo, introspection, token exchange, its
        gRPC services) asks it."""
        jti = str(jti)
        revoked, refresh = t.revoked_access_tokens.c, t.refresh_tokens.c
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.or_(
                sa.exists().where(revoked.jti == jti),
                sa.exists().where(refresh.access_jti == jti, refresh.revoked_at.is_not(None)),
            ))).scalar()
        if found:
            raise Unauthenticated("TOKEN_REVOKED", "the token was revoked")

    def verify_id_token(self, token: str) -> VerifiedToken:
        """Verify one of our ID tokens, for any registered client as audience."""
        try:
            aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
        except jwt.PyJWTError:
            raise Unauthenticated("TOKEN_MALFORMED", "not a token") from None
        # Unverified yet: 'aud' may be anything JSON holds (RFC 7519 4.1.3 allows a string or
        # an array of them; anything else names no client).
        auds = [aud] if isinstance(aud, str) else (
            [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else [])
        known = []
        for a in auds:
            with contextlib.suppress(NotFound):
                known.append(self.get_client(a).client_id)
        if not known:
            raise Unauthenticated("TOKEN_AUDIENCE_MISMATCH", "not issued to a known client")
        # One known client as the audience is enough (the token must name one the verifier
        # accepts), and keeps one verifier per client, whatever the unsigned 'aud' lists.
        verified = self.verifier(known[:1]).verify(token)
        if verified.token_type == ACCESS_TOKEN_TYPE:
            raise Unauthenticated("TOKEN_TYPE_MISMATCH", "an ID token is required")
        return verified

    def _person_of(self, token: VerifiedToken) -> m.Person:
        person_id = self.person_id_for_subject(token.subject)
        if person_id is None:
            raise Unauthenticated("TOKEN_SUBJECT_UNKNOWN", "the token's subject is unknown")
        return self.person(person_id)

    # ------------------------------------------------------------------ userinfo, revocation
    def userinfo(self, access_token: str) -> dict[str, Any]:
        token = self.verify_access_token(access_token)
        if "openid" not in token.scopes:
            raise PermissionDenied("INSUFFICIENT_SCOPE", "openid scope required")
        person = self._person_of(token)
        client = self.get_client(token.client_id or "")
        claims = {"sub": token.subject}
        claims.update(self._userinfo_claims(
            person, client, sorted(token.scopes),
            "verified_claims" in token.scopes or "verified_claims" in token.claims))
        return claims

    def revoke(self, client: m.Client, token: str) -> None:
        """RFC 7009: a refresh token revokes its whole family and with it every access token
        issued with one of them (section 2.1: the access tokens of the same grant; see
        :meth:`refuse_revoked`); an access token is revoked by its jti. A token issued to
        another client is refused (section 2.1), and stays valid; a token that is not ours,
        or no longer valid, is nothing to revoke (section 2.2)."""
        now = self.now()
        r = t.refresh_tokens
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(r.c.family_id, r.c.client_id).where(
                r.c.token_hash == digest(token))).first()
            if row is not None:
                if row.client_id != client.client_id:
                    raise _not_your_token()
                conn.execute(r.update().where(r.c.family_id == row.family_id,
                                              r.c.revoked_at.is_(None)).values(revoked_at=now))
                return
        try:
            verified = self.verifier([self.config.issuer, *m.RESOURCE_AUDIENCES.values(),
                                      client.client_id]).verify(token)
        except EgovError:
            return
        if verified.client_id != client.client_id:
            raise _not_your_token()
        try:
            with self.engine.begin() as conn:
                conn.execute(t.revoked_access_tokens.insert().values(
                    jti=str(verified.claims.get("jti")), expires_at=verified.expires_at))
        except sa.exc.IntegrityError:
            pass

    def introspect(self, caller: m.Client, token: str) -> dict[str, Any]:
        """RFC 7662 for access tokens (JWT) and refresh tokens (opaque). ``caller`` learns only
        of tokens it may know (section 4, against token scanning): those issued to it, and
        access tokens whose audience it is (a resource server registered under its audience
        name, such as ``urn:egov:registry``). Of any other token it learns ``active: false``,
        as of one that does not exist (section 2.2)."""
        now = self.now()
        r = t.refresh_tokens
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(r).where(r.c.token_hash == digest(token))
                               ).mappings().first()
        if row is not None:
            if (row["used_at"] or row["revoked_at"] or row["expires_at"] <= now
                    or row["client_id"] != caller.client_id):
                return {"active": False}
            # No token_type: RFC 7662 takes it from RFC 6749 section 5.1, which types access
            # tokens only.
            return {"active": True, "client_id": row["client_id"], "scope": row["scope"],
                    "exp": int(row["expires_at"])}
        try:
            verified = self.verifier([self.config.issuer, *m.RESOURCE_AUDIENCES.values()]
                                     ).verify(token)
            # An ID token is no access token, whatever its audience (a client id may be one
            # of ours): verify_access_token refuses it, and checks the revocation list.
            self.verify_access_token(token, verified.audience[0])
        except EgovError:
            return {"active": False}
        if caller.client_id != verified.client_id and caller.client_id not in verified.audience:
            return {"active": False}
        rep = verified.representation
        if rep is not None:  # a grant revoked or expired since: the token stops being active
            try:
                if self.representation(rep.grant_id).status is not m.RepresentationStatus.ACTIVE:
                    return {"active": False}
            except NotFound:
                return {"active": False}
        out: dict[str, Any] = {"active": True, "token_type": "Bearer"}  # RFC 6750
        out.update({k: v for k, v in verified.claims.items() if k in (
            "iss", "sub", "aud", "exp", "iat", "scope", "client_id", "acr", "amr", "auth_time",
            "agency", "act", "representation", "jti")})
        return out

    # ------------------------------------------------------------------ devices, CIBA
    def register_device(self, login_session_id: str, public_key_der: bytes,
                        display_name: str) -> str:
        session = self.login_session(login_session_id)
        if session.aal < 2:
            raise PermissionDenied("ACR_NOT_MET", "registering a device needs an AAL2 login")
        try:
            key = load_der_public_key(public_key_der)
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise ValueError("not P-256")
        except ValueError:
            raise InvalidArgument("DEVICE_KEY_INVALID", "an ECDSA P-256 public key is required",
                                  field_violations=(FieldViolation("public_key_der", "P-256"),)
                                  ) from None
        device_id = _new_id("dev")
        with self.engine.begin() as conn:
            conn.execute(t.devices.insert().values(
                device_id=device_id, person_id=session.person_id, public_key_der=public_key_der,
                display_name=display_name[:200], created_at=self.now()))
        return device_id

    def backchannel_authenticate(self, client_id: str, client_assertion: str, login_hint: str,
                                 binding_message: str, scope: str,
                                 acr_values: str = "") -> m.CibaStart:
        client = self.authenticate_client(client_id, client_assertion)
        if m.GRANT_CIBA not in client.grant_types:
            raise InvalidArgument("UNAUTHORIZED_CLIENT", "client may not use CIBA")
        if len(binding_message) > 64:
            raise InvalidArgument("BINDING_MESSAGE_TOO_LONG", "at most 64 characters",
                                  field_violations=(FieldViolation("binding_message", "<= 64"),))
        if not _plain_text(binding_message):
            raise InvalidArgument(
                "BINDING_MESSAGE_INVALID",
                "plain text only: no line breaks, control, direction or invisible characters",
                field_violations=(FieldViolation("binding_message", "plain text"),))
        scopes = _scopes(scope)
        if "openid" not in scopes or not set(scopes) <= set(client.scopes):
            raise InvalidArgument("INVALID_SCOPE", "scope must include openid and be allowed")
        _refuse_admin_scopes(scopes, "INVALID_SCOPE")
        # As Authorize: a request for more than the approval on a device gives is refused now,
        # before the person is asked, not answered with a weaker token.
        required = required_aal(acr_values)
        if required > CIBA_AAL:
            raise PermissionDenied("ACR_NOT_MET", f"a back-channel approval is AAL{CIBA_AAL}",
                                   metadata={"required_aal": str(required)})
        if not login_hint:
            raise InvalidArgument("LOGIN_HINT_INVALID", "login_hint is required")
        person_id = ""
        with self.engine.connect() as conn:
            if ":" in login_hint:
                ident = str(parse_identifier(login_hint, field="login_hint"))
                found = conn.execute(sa.select(t.persons.c.person_id).where(
                    t.persons.c.identifier == ident)).scalar()
            else:
                found = conn.execute(sa.select(t.persons.c.person_id).where(
                    t.persons.c.username == login_hint)).scalar()
        person_id = str(found or "")  # unknown: never approvable, expires like any other
        now = self.now()
        auth_req_id = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(t.ciba_requests.insert().values(
                auth_req_id=auth_req_id, client_id=client.client_id, person_id=person_id,
                scope=" ".join(scopes), binding_message=binding_message, status="pending",
                interval=self.config.ciba_interval_seconds, last_poll_at=0.0, created_at=now,
                expires_at=now + self.config.ciba_expires_seconds))
        return m.CibaStart(auth_req_id, self.config.ciba_expires_seconds,
                           self.config.ciba_interval_seconds)

    def _verify_device_proof(self, device_id: str, proof: str) -> tuple[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.devices).where(t.devices.c.device_id == device_id)
                               ).mappings().first()
        if row is None:
            raise Unauthenticated("DEVICE_PROOF_INVALID", "device proof is not valid")
        now = self.now()
        try:
            claims: dict[str, Any] = jwt.decode(
                proof, load_der_public_key(row["public_key_der"]),  # type: ignore[arg-type]
                algorithms=["ES256"], audience=self.config.issuer,
                options={"require": ["iat", "jti", "aud"], "verify_iat": False})
            if abs(now - float(claims["iat"])) > 60:
                raise jwt.InvalidTokenError("stale")
            with self.engine.begin() as conn:
                conn.execute(t.used_jtis.insert().values(
                    issuer=device_id, jti=str(claims["jti"])[:128], expires_at=now + 120))
        except (jwt.PyJWTError, sa.exc.IntegrityError, ValueError):
            raise Unauthenticated("DEVICE_PROOF_INVALID", "device proof is not valid") from None
        return str(row["person_id"]), claims

    def list_pending_approvals(self, device_id: str, proof: str) -> list[m.PendingApproval]:
        person_id, _ = self._verify_device_proof(device_id, proof)
        now = self.now()
        c = t.ciba_requests
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c, t.clients.c.client_name).join(
                t.clients, t.clients.c.client_id == c.c.client_id).where(
                c.c.person_id == person_id, c.c.status == "pending", c.c.expires_at > now)
            ).mappings().all()
        return [m.PendingApproval(r["auth_req_id"], r["client_name"], r["binding_message"],
                                  r["expires_at"]) for r in rows]

    def decide_approval(self, device_id: str, auth_req_id: str, approve: bool,
                        proof: str) -> None:
        person_id, claims = self._verify_device_proof(device_id, proof)
        if claims.get("auth_req_id") != auth_req_id or claims.get("approve") is not approve:
            raise Unauthenticated("DEVICE_PROOF_INVALID", "proof is for another decision")
        c = t.ciba_requests
        now = self.now()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(c).where(c.c.auth_req_id == auth_req_id)
                               ).mappings().first()
            if row is None or row["person_id"] != person_id:
                raise NotFound("AUTH_REQUEST_NOT_FOUND", "no such request")
            if row["expires_at"] <= now:
                raise FailedPrecondition("AUTH_REQUEST_EXPIRED", "the request has expired")
            done = conn.execute(c.update().where(c.c.auth_req_id == auth_req_id,
                                                 c.c.status == "pending").values(
                status="approved" if approve else "denied", auth_time=now)).rowcount
        if not done:
            raise FailedPrecondition("AUTH_REQUEST_DECIDED", "the request was already decided")

    def _grant_ciba(self, client: m.Client, request: m.TokenRequest) -> m.TokenResponse:
        c = t.ciba_requests
        now = self.now()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(c).where(c.c.auth_req_id == request.auth_req_id)
                               ).mappings().first()
            if row is None or row["client_id"] != client.client_id:
                raise InvalidArgument("INVALID_GRANT", "unknown auth_req_id")
            if row["redeemed_at"] is not None:
                raise InvalidArgument("INVALID_GRANT", "tokens were already issued")
            if row["expires_at"] <= now:
                raise FailedPrecondition("EXPIRED_TOKEN", "the request has expired")
            polled = conn.execute(c.update().where(
                c.c.auth_req_id == request.auth_req_id,
                c.c.last_poll_at <= now - c.c.interval).values(last_poll_at=now)).rowcount
            if not polled:
                # CIBA section 11: slow_down, and the client must add 5 s to its interval.
                conn.execute(c.update().where(c.c.auth_req_id == request.auth_req_id)
                             .values(interval=c.c.interval + 5, last_poll_at=now))
        if not polled:
            raise ResourceExhausted("SLOW_DOWN", "polling too fast",
                                    metadata={"interval": str(row["interval"] + 5)})
        if row["status"] == "pending":
            raise FailedPrecondition("AUTHORIZATION_PENDING", "not yet approved")
        if row["status"] == "denied":
            raise FailedPrecondition("ACCESS_DENIED", "the person denied the request")
        with self.engine.begin() as conn:
            redeemed = conn.execute(c.update().where(
                c.c.auth_req_id == request.auth_req_id, c.c.redeemed_at.is_(None)).values(
                redeemed_at=now)).rowcount
        if not redeemed:
            raise InvalidArgument("INVALID_GRANT", "tokens were already issued")
        return self._issue_person_tokens(
            client, row["person_id"], row["scope"].split(), aal=CIBA_AAL, amr=["hwk", "user"],
            auth_time=row["auth_time"], nonce="", claims_request="", family_id=None)

    # ------------------------------------------------------------------ juristic persons
    def register_juristic_person(self, identifier: Identifier, kind: m.JuristicKind,
                                 name_th: str, name_en: str,
                                 directors: Sequence[Identifier]) -> m.JuristicPerson:
        if identifier.namespace is not Namespace.TH_JUR:
            raise InvalidArgument("NAMESPACE_NOT_JURISTIC", "a juristic person is TH-JUR",
                                  field_violations=(FieldViolation("identifier", "TH-JUR"),))
        registered = self._registered_company(str(identifier))
        claimed = [str(d) for d in directors] or list(registered.directors)
        if not claimed:
            raise InvalidArgument("DIRECTORS_MISSING", "at least one director is required")
        if not set(claimed) <= set(registered.directors):
            raise FailedPrecondition("NOT_IN_COMPANY_REGISTER",
                                     "a director is not registered for this company")
        now = self.now()
        person = m.JuristicPerson(str(identifier), kind, name_th or registered.name_th,
                                  name_en or registered.name_en, tuple(claimed), now)
        try:
            with self.engine.begin() as conn:
                conn.execute(t.juristic_persons.insert().values(
                    identifier=person.identifier, kind=kind.value, name_th=person.name_th,
                    name_en=person.name_en, directors_json=json.dumps(claimed),
                    registered_at=now))
        except sa.exc.IntegrityError:
            raise AlreadyExists("JURISTIC_PERSON_EXISTS", "already registered") from None
        return person

    def _registered_company(self, identifier: str) -> RegisteredCompany:
        """The company register's entry for ``identifier`` today. Raises
        ``FailedPrecondition(NOT_IN_COMPANY_REGISTER)`` when it has none, and
        ``Unavailable(COMPANY_REGISTER_UNAVAILABLE)`` when it cannot be asked (see
        :class:`~egov_identity.adapters.sources.CompanyRegister`)."""
        try:
            registered = self.companies.company(identifier)
        except (OSError, Unavailable, DeadlineExceeded) as exc:
            log.warning("company register unavailable", extra={
                "source": self.companies.name, "error": type(exc).__name__})
            raise Unavailable("COMPANY_REGISTER_UNAVAILABLE",
                              "the company register cannot be reached; try again later"
                              ) from None
        if registered is None:
            raise FailedPrecondition("NOT_IN_COMPANY_REGISTER", "not in the company register")
        return registered

    def _directors_today(self, juristic: m.JuristicPerson) -> m.JuristicPerson:
        """``juristic`` with the directors the company register lists today, stored in place
        of the earlier list when it changed (token exchange honours grants of those only). A
        director who resigned since registration must not grant or revoke; one appointed
        since may. Raises as :meth:`_registered_company`: never the stored list instead."""
        directors = tuple(self._registered_company(juristic.identifier).directors)
        if directors != juristic.directors:
            with self.engine.begin() as conn:
                conn.execute(t.juristic_persons.update().where(
                    t.juristic_persons.c.identifier == juristic.identifier).values(
                    directors_json=json.dumps(list(directors))))
            log.info("directors updated from the company register", extra={
                "juristic_person": parse_identifier(juristic.identifier).masked(),
                "directors": len(directors),
                "before": len(juristic.directors)})
        return replace(juristic, directors=directors)

    def juristic_person(self, identifier: str) -> m.JuristicPerson:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.juristic_persons).where(
                t.juristic_persons.c.identifier == identifier)).mappings().first()
        if row is None:
            raise NotFound("JURISTIC_PERSON_NOT_FOUND", "no such juristic person")
        return m.JuristicPerson(row["identifier"], m.JuristicKind(row["kind"]), row["name_th"],
                                row["name_en"], tuple(json.loads(row["directors_json"])),
                                row["registered_at"])

    def _director_from_token(self, id_token: str, juristic: m.JuristicPerson,
                             caller_client_id: str | None) -> m.Person:
        """The director whose fresh AAL2 ID token ``caller_client_id`` presents. An ID token
        is for its audience alone (OIDC Core 3.1.3.7): only the client the director logged in
        to may present it, and only a client registered for representations
        (``identity:representation`` among its scopes) may manage them at all. Otherwise any
        relying party the director ever logged in to could grant in the director's name. A
        director is one the company register lists today (:meth:`_directors_today`)."""
        if not caller_client_id:
            raise Unauthenticated("TOKEN_MISSING",
                                  "the director's portal must call with its access token")
        try:
            caller = self.get_client(caller_client_id)
        except NotFound:
            raise PermissionDenied("CLIENT_NOT_ALLOWED", "an unknown client") from None
        if "identity:representation" not in caller.scopes:
            raise PermissionDenied("CLIENT_NOT_ALLOWED",
                                   "this client is not registered to manage representations")
        verified = self.verifier([caller.client_id]).verify(id_token)
        if verified.token_type == ACCESS_TOKEN_TYPE:
            raise Unauthenticated("TOKEN_TYPE_MISMATCH", "an ID token is required")
        if (verified.aal or 0) < 2 or (verified.auth_time or 0) < self.now() - 900:
            raise PermissionDenied("ACR_NOT_MET", "a fresh AAL2 login is required")
        person = self._person_of(verified)
        # Asked only now: an unauthenticated caller does not make us query the register.
        juristic = self._directors_today(juristic)
        if person.identifier not in juristic.directors:
            raise PermissionDenied("NOT_A_DIRECTOR", "only a registered director may do this")
        return person

    def grant_representation(self, *, juristic_person: Identifier, representative: Identifier,
                             role: str, powers: Sequence[str], valid_from: float | None,
                             valid_until: float, grantor_id_token: str,
                             caller_client_id: str | None) -> m.Representation:
        juristic = self.juristic_person(str(juristic_person))
        grantor = self._director_from_token(grantor_id_token, juristic, caller_client_id)
        _check_length(role, 64, "role")
        if not powers:
            raise InvalidArgument("POWERS_MISSING", "at least one power",
                                  field_violations=(FieldViolation("powers", "non-empty"),))
        unknown = set(powers) - set(self.config.powers)
        if unknown:
            raise InvalidArgument("POWER_UNKNOWN", "unknown power",
                                  field_violations=(FieldViolation("powers", sorted(unknown)[0]),))
        start = valid_from or self.now()
        if valid_until <= start:
            raise InvalidArgument("VALIDITY_INVALID", "valid_until must be after valid_from",
                                  field_violations=(FieldViolation("valid_until", "> from"),))
        if self.person_by_identifier(str(representative)) is None:
            raise NotFound("PERSON_NOT_FOUND", "the representative is not a known person")
        rep_id = _new_id("rep")
        evidence = f"{self.companies.name}-directors-" + dt.datetime.fromtimestamp(
            self.now(), dt.UTC).strftime("%Y-%m-%d")
        with self.engine.begin() as conn:
            conn.execute(t.representations.insert().values(
                representation_id=rep_id, juristic_person=juristic.identifier,
                representative=str(representative), role=role, powers_json=json.dumps(
                    list(powers)), valid_from=start, valid_until=valid_until,
                granted_by=grantor.identifier, evidence=evidence, revoked_at=None,
                created_at=self.now()))
        return self.representation(rep_id)

    def _rep_from_row(self, row: sa.RowMapping) -> m.Representation:
        now = self.now()
        status = (m.RepresentationStatus.REVOKED if row["revoked_at"] is not None else
                  m.RepresentationStatus.EXPIRED if row["valid_until"] <= now else
                  m.RepresentationStatus.ACTIVE)
        return m.Representation(
            row["representation_id"], row["juristic_person"], row["representative"],
            row["role"], tuple(json.loads(row["powers_json"])), row["valid_from"],
            row["valid_until"], row["granted_by"], row["evidence"], status)

    def representation(self, representation_id: str) -> m.Representation:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.representations).where(
                t.representations.c.representation_id == representation_id)).mappings().first()
        if row is None:
            raise NotFound("REPRESENTATION_NOT_FOUND", "no such representation")
        return self._rep_from_row(row)

    def revoke_representation(self, representation_id: str, revoker_id_token: str,
                              caller_client_id: str | None) -> m.Representation:
        rep = self.representation(representation_id)
        self._director_from_token(revoker_id_token, self.juristic_person(rep.juristic_person),
                                  caller_client_id)
        with self.engine.begin() as conn:
            done = conn.execute(t.representations.update().where(
                t.representations.c.representation_id == representation_id,
                t.representations.c.revoked_at.is_(None)).values(revoked_at=self.now())
            ).rowcount
        if not done:
            raise FailedPrecondition("REPRESENTATION_REVOKED", "already revoked")
        return self.representation(representation_id)

    def list_representations(self, *, juristic_person: str = "", representative: str = "",
                             page_size: int = 20, page_token: str = ""
                             ) -> tuple[list[m.Representation], str]:
        if not juristic_person and not representative:
            raise InvalidArgument("FILTER_MISSING", "filter by juristic person or representative")
        size = page_size if 0 < page_size <= 100 else 20
        # An offset we handed out; a longer number would overflow the database's integer.
        if page_token and not _PAGE_TOKEN.fullmatch(page_token):
            raise InvalidArgument("PAGE_TOKEN_INVALID", "bad page token")
        offset = int(page_token) if page_token else 0
        r = t.representations
        q = sa.select(r).order_by(r.c.created_at, r.c.representation_id)
        if juristic_person:
            q = q.where(r.c.juristic_person == juristic_person)
        if representative:
            q = q.where(r.c.representative == representative)
        with self.engine.connect() as conn:
            rows = conn.execute(q.offset(offset).limit(size + 1)).mappings().all()
        page = [self._rep_from_row(row) for row in rows[:size]]
        return page, (str(offset + size) if len(rows) > size else "")

    def _grant_token_exchange(self, client: m.Client,
                              request: m.TokenRequest) -> m.TokenResponse:
        if request.subject_token_type not in (m.TOKEN_TYPE_ACCESS, ""):
            raise InvalidArgument("INVALID_REQUEST", "subject_token_type must be access_token")
        if not request.act_for:
            raise InvalidArgument("INVALID_REQUEST", "act_for is required")
        try:
            subject_token = self.verify_access_token(request.subject_token)
        except Unauthenticated:
            raise InvalidArgument("INVALID_GRANT", "subject token is not valid") from None
        person = self._person_of(subject_token)
        juristic = self.juristic_person(str(parse_identifier(request.act_for, field="act_for")))
        now = self.now()
        r = t.representations
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(r).where(
                r.c.juristic_person == juristic.identifier,
                r.c.representative == person.identifier,
            ).order_by(r.c.created_at, r.c.representation_id)).mappings().all()
        grants = [self._rep_from_row(row) for row in rows]
        live = [g for g in grants if g.status is m.RepresentationStatus.ACTIVE
                and g.valid_from <= now + self.config.leeway_seconds
                and g.granted_by in juristic.directors]
        if not live:
            raise PermissionDenied("NOT_REPRESENTATIVE", "no valid representation grant")
        scopes = _scopes(request.scope) if request.scope else [
            s for s in client.scopes if s not in m.PERSON_SCOPES and not _is_admin_scope(s)]
        if not set(scopes) <= set(client.scopes):
            raise InvalidArgument("INVALID_SCOPE", "scope not allowed for this client")
        _refuse_admin_scopes(scopes, "INVALID_SCOPE")  # the token speaks for a person too
        # The oldest live grant that holds every power the scopes need: a person may hold
        # several grants for one company, with different powers.
        needed = _powers_for(scopes)
        live = [g for g in live if needed <= set(g.powers)]
        if not live:
            raise PermissionDenied(
                "POWER_MISSING", f"no live grant includes {', '.join(sorted(needed))}")
        grant = live[0]
        audience = _audiences_for(scopes) or [self.config.issuer]
        if request.audience:
            # RFC 8693 section 2.2.2: only a service the granted scopes are for, never another
            # client or a service the client holds no scope of.
            if request.audience not in audience:
                raise InvalidArgument("INVALID_TARGET", "the audience is not one the scope is for")
            audience = [request.audience]
        iat = int(now)
        lifetime = min(self.config.access_token_seconds, max(1, int(grant.valid_until - now)))
        # The person as this client knows them (a pairwise client gets its own subject, not
        # the one another client's token carried), and the national id only when asked for.
        actor: dict[str, Any] = {"sub": self.subject_for(person.person_id, client)}
        if "identifier" in scopes:
            actor["identifier"] = person.identifier
        claims: dict[str, Any] = {
            "iss": self.config.issuer, "sub": juristic.identifier, "aud": audience, "iat": iat,
            "exp": iat + lifetime, "jti": secrets.token_urlsafe(16),
            "client_id": client.client_id, "scope": " ".join(scopes),
            "auth_time": int(subject_token.auth_time or iat), "acr": subject_token.acr,
            "amr": list(subject_token.amr), "act": actor,
            "representation": {"juristic_person": juristic.identifier, "role": grant.role,
                               "powers": list(grant.powers),
                               "grant_id": grant.representation_id,
                               # the company register's names: what keys may certify
                               **({"organization_name": juristic.name_en}
                                  if juristic.name_en else {}),
                               **({"organization_name#th": juristic.name_th}
                                  if juristic.name_th else {})}}
        token = self.keyring.sign(claims, typ=ACCESS_TOKEN_TYPE)
        return m.TokenResponse(token, lifetime, " ".join(scopes),
                               issued_token_type=m.TOKEN_TYPE_ACCESS)
