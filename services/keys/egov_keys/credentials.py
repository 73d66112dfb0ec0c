"""Credentials under their owners' sole control (CSC API v2 semantics).

Application layer over the domain: every state change and its audit entry are one database
transaction; if the audit entry cannot be written the operation fails. A SAD is spent by a
conditional UPDATE in the database, so exactly one SignHash wins however many calls or
processes race for it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy.exc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from egov_common import deadlines
from egov_common.auth import Caller, CallerKind
from egov_common.clock import Clock
from egov_common.errors import (
    DeadlineExceeded,
    EgovError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from egov_common.logging import mask_text
from egov_pki.identifiers import Identifier
from egov_pki.tokens import VerifiedToken

from egov_keys.domain.algorithms import (
    HashAlgorithm,
    KeyAlgorithm,
    SignatureScheme,
    verify_digest_signature,
)
from egov_keys.domain.audit import ChainVerdict, verify_chain
from egov_keys.domain.authorization import (
    AssurancePolicy,
    ProofVerifier,
    Purpose,
    authorize_owner,
    caller_label,
)
from egov_keys.domain.custody import CustodyBackend, KeyRole, UnknownKek
from egov_keys.domain.model import (
    AuditEvent,
    AuditRecord,
    Credential,
    CredentialStatus,
    RevocationReason,
    SadRecord,
)
from egov_keys.domain.names import CertifiedNames, OwnerNames, certified_names
from egov_keys.domain.pki import OwnerKind, SubjectDetails, issue_end_entity, subject_name
from egov_keys.storage.repository import KeysRepository, StaleAuthority, StaleCredential
from egov_keys.trust import TrustServices, new_serial

__all__ = ["CredentialPolicy", "CredentialService", "CredentialView", "IssuedSad", "OwnerNames"]

log = logging.getLogger("egov.keys.credentials")

_SAD_PREFIX = "sad1."
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AUDIT_PAGE_TOKEN = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class CredentialPolicy:
    assurance: AssurancePolicy
    sad_lifetime: dt.timedelta
    max_signatures: int
    certificate_lifetime: dt.timedelta
    #: Caller subjects (mTLS service names or client ids) allowed to call SignHash; "*" = any.
    sign_callers: frozenset[str]
    audit_callers: frozenset[str]
    default_backend: CustodyBackend


@dataclass(frozen=True, slots=True)
class CredentialView:
    """A credential as one caller may see it.

    ``complete`` False: a natural person's credential read by someone who is neither its owner
    nor a service that needs it (the signing service, an auditor). The owner's national id (or
    passport number) is personal data: such a caller gets it masked, and no certificate chain
    (the certificate's serialNumber is ``PNOTH-<national id>``).
    """

    credential: Credential
    complete: bool


@dataclass(frozen=True, slots=True)
class IssuedSad:
    sad: str
    expires_at: dt.datetime


def _hashes_binding(hashes: Sequence[bytes]) -> str:
    # All digests have the algorithm's length, so the sorted concatenation is unambiguous.
    return hashlib.sha256(b"".join(sorted(hashes))).hexdigest()


def _sad_hash(sad: str) -> str:
    return hashlib.sha256(sad.encode("ascii", "replace")).hexdigest()


@contextmanager
def _audit_guard() -> Iterator[None]:
    """A database failure while writing state + audit fails the operation, never silently."""
    try:
        yield
    except sqlalchemy.exc.IntegrityError:
        raise
    except sqlalchemy.exc.SQLAlchemyError as exc:
        log.error("audit/state write failed: %s", type(exc).__name__)
        raise Unavailable("AUDIT_UNAVAILABLE", "the audit log could not be written") from None


class CredentialService:
    def __init__(
        self,
        repository: KeysRepository,
        trust: TrustServices,
        proofs: ProofVerifier,
        policy: CredentialPolicy,
        clock: Clock,
    ) -> None:
        self._repo = repository
        self._trust = trust
        self._proofs = proofs
        self._policy = policy
        self._clock = clock

    # -- helpers -------------------------------------------------------------------------------

    def _proof(self, token: str) -> VerifiedToken | None:
        return self._proofs.verify(token) if token else None

    def _prove(
        self,
        caller: Caller,
        credential: Credential,
        purpose: str,
        proof: VerifiedToken | None,
        now: dt.datetime,
    ) -> str:
        """authorize_owner for an existing credential (its creator's ``sub`` may prove it)."""
        return authorize_owner(
            owner=credential.owner,
            kind=credential.kind,
            purpose=purpose,
            proof=proof,
            caller=caller,
            policy=self._policy.assurance,
            now=now,
            owner_subject=credential.created_by,
        )

    def _credential(self, credential_id: str) -> Credential:
        found = self._repo.credential(credential_id) if _plausible_id(credential_id) else None
        if found is None:
            raise _credential_not_found()
        return found

    def effective_status(self, credential: Credential) -> str:
        if (
            credential.status is CredentialStatus.ACTIVE
            and self._clock.now() >= credential.not_after
        ):
            return "expired"
        return credential.status.value

    def _require_usable(self, credential: Credential) -> None:
        if credential.status is CredentialStatus.REVOKED:
            raise FailedPrecondition("CREDENTIAL_REVOKED", "the credential is revoked")
        if credential.status is CredentialStatus.RENEWED:
            raise FailedPrecondition("CREDENTIAL_RENEWED", "the credential was renewed")
        now = self._clock.now()
        if now >= credential.not_after or now < credential.not_before:
            raise FailedPrecondition("CREDENTIAL_EXPIRED", "the certificate is not valid now")
        # Its issuing CA revoked (an operator's act): every signature would fail validation.
        self._trust.require_unrevoked(credential.issuer)

    def chain(self, credential: Credential) -> list[bytes]:
        return [
            credential.certificate_der,
            *self._trust.chain_der(credential.issuer, issued_der=credential.certificate_der),
        ]

    def _check_hashes(
        self, hashes: Sequence[bytes], hash_algorithm: HashAlgorithm | None, field: str = "hashes"
    ) -> HashAlgorithm:
        if hash_algorithm is None:
            raise InvalidArgument(
                "HASH_ALGORITHM_MISSING",
                "hash_algorithm is required",
                field_violations=(FieldViolation("hash_algorithm", "required"),),
            )
        if not hashes:
            raise InvalidArgument(
                "HASHES_MISSING",
                "at least one hash is required",
                field_violations=(FieldViolation(field, "empty"),),
            )
        if len(hashes) > self._policy.max_signatures:
            raise InvalidArgument(
                "BATCH_TOO_LARGE",
                f"at most {self._policy.max_signatures} hashes per call",
                field_violations=(FieldViolation(field, "too many hashes"),),
                metadata={"max": str(self._policy.max_signatures)},
            )
        bad = [
            FieldViolation(f"{field}[{i}]", f"must be {hash_algorithm.digest_size} bytes")
            for i, h in enumerate(hashes)
            if len(h) != hash_algorithm.digest_size
        ]
        if bad:
            raise InvalidArgument(
                "HASH_LENGTH_MISMATCH",
                "a hash does not have the algorithm's length",
                field_violations=bad[:10],
            )
        return hash_algorithm

    def _actor(self, caller: Caller, proof_actor: str, owner: Identifier | None = None) -> str:
        via = caller_label(caller)
        who = proof_actor
        if proof_actor == "person" and owner is not None:
            who = f"person:{owner.masked()}"
        return f"{who} via {via}" if who != via else who

    # -- credentials ---------------------------------------------------------------------------

    def create(
        self,
        caller: Caller,
        *,
        idempotency_key: str,
        owner: Identifier,
        kind: OwnerKind,
        algorithm: KeyAlgorithm,
        names: OwnerNames,
        proof_token: str,
        backend: CustodyBackend | None,
    ) -> Credential:
        _check_idempotency_key(idempotency_key)
        natural = kind is OwnerKind.NATURAL_PERSON
        if natural != owner.is_natural_person:
            raise InvalidArgument(
                "OWNER_INVALID",
                "a natural-person credential needs TH-PID or PASSPORT; others need TH-JUR",
                field_violations=(FieldViolation("owner.namespace", "does not fit kind"),),
            )
        backend = backend or self._policy.default_backend
        fingerprint = hashlib.sha256(
            json.dumps(
                [str(owner), kind.value, algorithm.value, backend.value, names.__repr__()]
            ).encode()
        ).hexdigest()
        existing = self._repo.credential_by_idempotency_key(idempotency_key)
        proof = self._proof(proof_token)
        now = self._clock.now()
        actor = authorize_owner(
            owner=owner,
            kind=kind,
            purpose=Purpose.ISSUE,
            proof=proof,
            caller=caller,
            policy=self._policy.assurance,
            now=now,
        )
        if existing is not None:
            return self._replay(existing, fingerprint)
        return self._issue(
            caller,
            actor,
            idempotency_key,
            fingerprint,
            owner,
            kind,
            algorithm,
            certified_names(kind, names, proof),
            backend,
            proof,
            renews=None,
        )

    def _replay(self, existing: tuple[Credential, str], fingerprint: str) -> Credential:
        credential, stored = existing
        if stored != fingerprint:
            raise FailedPrecondition(
                "IDEMPOTENCY_KEY_REUSED", "idempotency_key was used for a different request"
            )
        return credential

    def _issue(
        self,
        caller: Caller,
        actor: str,
        idempotency_key: str,
        fingerprint: str,
        owner: Identifier,
        kind: OwnerKind,
        algorithm: KeyAlgorithm,
        certified: CertifiedNames,
        backend: CustodyBackend,
        proof: VerifiedToken | None,
        renews: Credential | None,
    ) -> Credential:
        try:
            custody = self._trust.custody_for(backend)
        except KeyError:
            raise InvalidArgument(
                "KEY_BACKEND_UNAVAILABLE",
                "that key backend is not configured",
                field_violations=(FieldViolation("key_backend", "not configured"),),
            ) from None
        ca = self._trust.issuing_ca(kind)
        names = certified.names
        details = SubjectDetails(
            kind,
            owner,
            names.given_name_en,
            names.family_name_en,
            names.given_name_th,
            names.family_name_th,
            names.organization_en,
            names.organization_th,
        )
        try:  # before a key is made: a name the certificate cannot hold leaves no key behind
            subject_name(details)
        except ValueError as exc:  # X.520 bounds (64 characters for a name attribute)
            raise InvalidArgument(
                "NAMES_INVALID",
                str(exc),
                field_violations=(FieldViolation("names", str(exc)),),
            ) from None
        credential_id = "cred_" + secrets.token_hex(16)
        key = custody.generate(f"owner-{credential_id}", algorithm, KeyRole.OWNER)
        now = self._clock.now()
        for attempt in range(3):
            serial = new_serial()
            not_before = now.replace(microsecond=0) - dt.timedelta(minutes=1)
            try:
                cert = issue_end_entity(
                    self._trust.custody_for(ca.key.backend),
                    ca,
                    details,
                    key,
                    self._trust.urls,
                    serial,
                    not_before,
                    now + self._policy.certificate_lifetime,
                )
            except ValueError as exc:
                raise InvalidArgument(
                    "OWNER_INVALID",
                    str(exc),
                    field_violations=(FieldViolation("owner", str(exc)),),
                ) from None
            credential = Credential(
                credential_id=credential_id,
                owner=owner,
                kind=kind,
                key=key,
                certificate_der=cert.public_bytes(Encoding.DER),
                certificate_serial=serial,
                issuer=ca.name,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                status=CredentialStatus.ACTIVE,
                created_at=now,
                created_by=(proof.subject if proof else caller.subject)[:255],
                max_signatures=self._policy.max_signatures,
                renewed_from=renews.credential_id if renews else "",
            )
            event = AuditEvent(
                "credential.renew" if renews else "credential.create",
                self._actor(caller, actor, owner),
                credential_id,
                "success",
                json.dumps(
                    {
                        "kind": kind.value,
                        "algorithm": algorithm.value,
                        "backend": backend.value,
                        "issuer": ca.name,
                        "serial": f"{serial:x}",
                        "renewed_from": renews.credential_id if renews else "",
                        # Requested names identity verified no claim for: not certified.
                        "names_omitted": list(certified.omitted),
                    }
                ),
            )
            try:
                with _audit_guard():
                    self._repo.insert_credential(
                        credential,
                        idempotency_key,
                        fingerprint,
                        event,
                        now,
                        issuer_key_id=ca.key.key_id,
                        renews=renews.credential_id if renews else "",
                    )
                return credential
            except StaleCredential:
                raise FailedPrecondition(
                    "CREDENTIAL_RENEWED", "the credential changed state meanwhile"
                ) from None
            except StaleAuthority:
                # Bootstrap replaced the CA this process still held (its key revoked): certify
                # the same key again under the CA in service now, if there is one yet.
                self._trust.reread()
                ca = self._trust.issuing_ca(kind)
                continue
            except sqlalchemy.exc.IntegrityError:
                winner = self._repo.credential_by_idempotency_key(idempotency_key)
                if winner is not None:
                    return self._replay(winner, fingerprint)
                if attempt == 2:
                    raise
        # Only when the issuing CA was replaced at every attempt.
        raise Unavailable("CA_BEING_REPLACED", "the issuing CA is being replaced: try again")

    def get(self, credential_id: str) -> Credential:
        return self._credential(credential_id)

    def view(self, caller: Caller, credential_id: str) -> CredentialView:
        """GetCredential: the credential, complete only for those who may see its owner.

        Complete for: a juristic person's or agency's credential (register data, no personal
        data); the signing service and other SignHash callers (signing needs the certificate
        chain); auditors (``AUDIT_CALLERS``, the admin scope); the owner calling with their own
        access token (its ``identifier``, or the ``sub`` that had the credential issued).
        Raises NotFound (CREDENTIAL_NOT_FOUND).
        """
        credential = self._credential(credential_id)
        complete = (
            credential.kind is not OwnerKind.NATURAL_PERSON
            or _caller_listed(caller, self._policy.sign_callers)
            or self._is_auditor(caller)
            or _is_owner(caller, credential)
        )
        return CredentialView(credential, complete)

    def list_credentials(
        self,
        caller: Caller,
        *,
        owner: Identifier,
        proof_token: str,
        status: CredentialStatus | None,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Credential], str]:
        proof = self._proof(proof_token)
        kinds = (
            (OwnerKind.NATURAL_PERSON,)
            if owner.is_natural_person
            else (OwnerKind.LEGAL_PERSON, OwnerKind.ELECTRONIC_SEAL)
        )
        last_error: EgovError | None = None
        for kind in kinds:
            try:
                authorize_owner(
                    owner=owner,
                    kind=kind,
                    purpose=Purpose.MANAGE,
                    proof=proof,
                    caller=caller,
                    policy=self._policy.assurance,
                    now=self._clock.now(),
                )
                last_error = None
                break
            except EgovError as exc:
                last_error = exc
        if last_error is not None:
            raise last_error
        if page_size < 0 or page_size > 100:
            raise InvalidArgument(
                "PAGE_SIZE_INVALID",
                "page_size is 0 to 100",
                field_violations=(FieldViolation("page_size", "0 to 100"),),
            )
        size = page_size or 20
        after = ""
        if page_token:
            try:
                after = base64.urlsafe_b64decode(page_token.encode()).decode()
                if not after.startswith("cred_") or not _plausible_id(after):
                    raise ValueError("not a credential id")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise InvalidArgument(
                    "PAGE_TOKEN_INVALID",
                    "page_token is not from a previous response",
                    field_violations=(FieldViolation("page_token", "invalid"),),
                ) from None
        page = self._repo.list_credentials(str(owner), status, after, size + 1)
        more = len(page) > size
        page = page[:size]
        token = base64.urlsafe_b64encode(page[-1].credential_id.encode()).decode() if more else ""
        return page, token

    def revoke(
        self, caller: Caller, credential_id: str, reason: RevocationReason, proof_token: str
    ) -> Credential:
        credential = self._credential(credential_id)
        with self._refusals_audited("certificate.revoke", caller, credential_id):
            proof = self._proof(proof_token)
            now = self._clock.now()
            actor = self._prove(caller, credential, Purpose.MANAGE, proof, now)
        if credential.status is CredentialStatus.REVOKED:
            raise FailedPrecondition("CREDENTIAL_REVOKED", "the credential is already revoked")
        event = AuditEvent(
            "certificate.revoke",
            self._actor(caller, actor, credential.owner),
            credential_id,
            "success",
            json.dumps(
                {
                    "serial": f"{credential.certificate_serial:x}",
                    "reason": reason.value,
                    "issuer": credential.issuer,
                }
            ),
        )
        try:
            with _audit_guard():
                self._repo.revoke_credential(credential, reason, event, now)
        except StaleCredential:
            raise FailedPrecondition(
                "CREDENTIAL_REVOKED", "the credential is already revoked"
            ) from None
        self._trust.refresh_crl(credential.issuer)
        return self._credential(credential_id)

    def renew(
        self,
        caller: Caller,
        *,
        idempotency_key: str,
        credential_id: str,
        algorithm: KeyAlgorithm | None,
        proof_token: str,
    ) -> tuple[Credential, Credential]:
        _check_idempotency_key(idempotency_key)
        old = self._credential(credential_id)
        with self._refusals_audited("credential.renew", caller, credential_id):
            proof = self._proof(proof_token)
            now = self._clock.now()
            actor = self._prove(caller, old, Purpose.ISSUE, proof, now)
        algorithm = algorithm or old.key.algorithm
        fingerprint = hashlib.sha256(
            json.dumps(["renew", credential_id, algorithm.value]).encode()
        ).hexdigest()
        existing = self._repo.credential_by_idempotency_key(idempotency_key)
        if existing is not None:
            return self._replay(existing, fingerprint), self._credential(credential_id)
        if old.status is CredentialStatus.REVOKED:
            raise FailedPrecondition("CREDENTIAL_REVOKED", "a revoked credential is not renewed")
        if old.status is CredentialStatus.RENEWED:
            raise FailedPrecondition("CREDENTIAL_RENEWED", "the credential was renewed already")
        subject = x509.load_der_x509_certificate(old.certificate_der).subject
        with self._refusals_audited("credential.renew", caller, credential_id):
            # Names are checked again: the renewal proof must still verify them.
            certified = certified_names(old.kind, _names_from_subject(subject), proof)
        new = self._issue(
            caller,
            actor,
            idempotency_key,
            fingerprint,
            old.owner,
            old.kind,
            algorithm,
            certified,
            old.key.backend,
            proof,
            renews=old,
        )
        return new, self._credential(credential_id)

    # -- sole control --------------------------------------------------------------------------

    def authorize(
        self,
        caller: Caller,
        *,
        credential_id: str,
        hashes: Sequence[bytes],
        hash_algorithm: HashAlgorithm | None,
        num_signatures: int,
        proof_token: str,
        description: str,
    ) -> IssuedSad:
        algorithm = self._check_hashes(hashes, hash_algorithm)
        if num_signatures != len(hashes):
            raise InvalidArgument(
                "NUM_SIGNATURES_MISMATCH",
                "num_signatures must equal the number of hashes",
                field_violations=(FieldViolation("num_signatures", "must equal len(hashes)"),),
            )
        credential = self._credential(credential_id)
        with self._refusals_audited("sad.authorize", caller, credential_id):
            self._require_usable(credential)
            proof = self._proof(proof_token)
            now = self._clock.now()
            actor = self._prove(caller, credential, Purpose.SIGN, proof, now)
        sad = _SAD_PREFIX + secrets.token_urlsafe(32)
        expires = now + self._policy.sad_lifetime
        record = SadRecord(
            _sad_hash(sad),
            credential_id,
            algorithm,
            _hashes_binding(hashes),
            len(hashes),
            expires,
            None,
        )
        event = AuditEvent(
            "sad.authorize",
            self._actor(caller, actor, credential.owner),
            credential_id,
            "success",
            json.dumps(
                {
                    "hashes": len(hashes),
                    "hash_algorithm": algorithm.value,
                    "binding": record.hashes_binding,
                    # Client text: masked like a log line (the chain keeps it for good).
                    "description": mask_text(description)[:200],
                },
                ensure_ascii=False,
            ),
        )
        with _audit_guard():
            self._repo.insert_sad(record, event, now)
        return IssuedSad(sad, expires)

    def sign_hash(
        self,
        caller: Caller,
        *,
        credential_id: str,
        sad: str,
        hashes: Sequence[bytes],
        hash_algorithm: HashAlgorithm | None,
        scheme: SignatureScheme | None,
    ) -> list[bytes]:
        self._require_sign_caller(caller, credential_id)
        if not sad:
            raise Unauthenticated("SAD_MISSING", "no Signature Activation Data was given")
        algorithm = self._check_hashes(hashes, hash_algorithm)
        # The credential and the SAD in one read (a SAD longer than any we issue is unknown).
        credential, record = (
            self._repo.signing_state(credential_id, _sad_hash(sad) if len(sad) <= 128 else "")
            if _plausible_id(credential_id)
            else (None, None)
        )
        if credential is None:
            raise _credential_not_found()
        scheme = scheme or credential.key.algorithm.default_scheme
        if not credential.key.algorithm.allows(scheme):
            raise InvalidArgument(
                "ALGORITHM_MISMATCH",
                "the signature algorithm does not fit the key",
                field_violations=(FieldViolation("signature_algorithm", "does not fit key"),),
            )
        with self._refusals_audited("signature.batch", caller, credential_id):
            self._require_usable(credential)
        now = self._clock.now()
        refusal = self._sad_refusal(record, credential_id, hashes, algorithm, now)
        actor = caller_label(caller)
        if refusal is not None or record is None:
            refusal = refusal or Unauthenticated("SAD_INVALID", "unknown SAD")
            self._audit_refusal("signature.batch", actor, credential_id, refusal, now)
            raise refusal
        event = AuditEvent(
            "signature.batch",
            actor,
            credential_id,
            "success",
            json.dumps(
                {
                    "hashes": len(hashes),
                    "hash_algorithm": algorithm.value,
                    "scheme": scheme.value,
                    "binding": record.hashes_binding,
                }
            ),
        )
        left = deadlines.remaining()
        if left is not None and left <= 0:
            # The caller has given up and would never receive the signatures: spending the SAD
            # now would only take the owner's authorisation away from a retry.
            raise DeadlineExceeded("DEADLINE_EXCEEDED", "the call's deadline passed before signing")
        with _audit_guard():
            spent = self._repo.spend_sad(record, event, now)
        if not spent:
            # Lost the race to another call (here or in another process), or the credential was
            # revoked or renewed meanwhile: the spend is conditional on both.
            try:
                self._require_usable(self._credential(credential_id))
                refusal = Unauthenticated("SAD_ALREADY_USED", "the SAD was already used")
            except EgovError as changed:
                refusal = changed
            self._audit_refusal("signature.batch", actor, credential_id, refusal, now)
            raise refusal
        custody = self._trust.custody_for(credential.key.backend)
        public_key = credential.key.public_key()
        try:
            signatures = custody.sign_digests(credential.key, hashes, algorithm, scheme)
            for digest, signature in zip(hashes, signatures, strict=True):
                # Never release a faulty signature (an RSA-CRT fault would leak the key).
                verify_digest_signature(public_key, signature, digest, algorithm, scheme)
            return signatures
        except UnknownKek as exc:
            # The operator dropped a KEK before re-wrapping this key, or this replica runs
            # without it: a configuration problem to name, not a backend failure to retry.
            refusal = FailedPrecondition(
                "KEK_UNKNOWN",
                f"the credential's key is sealed under KEK id {exc.kek_id!r}, which this "
                "service is not configured with",
            )
            log.error(
                "key sealed under an unconfigured KEK",
                extra={"credential_id": credential_id, "kek_id": exc.kek_id},
            )
            self._audit_refusal("signature.batch", actor, credential_id, refusal, now)
            raise refusal from None
        except Exception:
            log.exception("signing failed", extra={"credential_id": credential_id})
            self._audit_refusal(
                "signature.batch",
                actor,
                credential_id,
                Unavailable("SIGNING_FAILED", "the key backend failed"),
                now,
            )
            raise Unavailable("SIGNING_FAILED", "the key backend failed to sign") from None

    def _require_sign_caller(self, caller: Caller, credential_id: str) -> None:
        if _caller_listed(caller, self._policy.sign_callers):
            return
        refusal = PermissionDenied("CALLER_NOT_ALLOWED", "only the signing service may sign")
        # An attempt on an existing credential is audited like every other refusal (the SAD
        # stays unspent); one on no credential names nothing to attach it to.
        if _plausible_id(credential_id) and self._repo.credential(credential_id) is not None:
            self._audit_refusal(
                "signature.batch", caller_label(caller), credential_id, refusal, self._clock.now()
            )
        raise refusal

    @staticmethod
    def _sad_refusal(
        record: SadRecord | None,
        credential_id: str,
        hashes: Sequence[bytes],
        algorithm: HashAlgorithm,
        now: dt.datetime,
    ) -> EgovError | None:
        if record is None:
            return Unauthenticated("SAD_INVALID", "unknown Signature Activation Data")
        if record.credential_id != credential_id:
            return Unauthenticated("SAD_OTHER_CREDENTIAL", "the SAD is for another credential")
        if (
            record.hash_algorithm is not algorithm
            or record.num_signatures != len(hashes)
            or record.hashes_binding != _hashes_binding(hashes)
        ):
            return Unauthenticated("SAD_OTHER_HASHES", "the SAD authorises other hashes")
        if record.spent_at is not None:
            return Unauthenticated("SAD_ALREADY_USED", "the SAD was already used")
        if now >= record.expires_at:
            return Unauthenticated("SAD_EXPIRED", "the SAD has expired")
        return None

    @contextmanager
    def _refusals_audited(self, action: str, caller: Caller, credential_id: str) -> Iterator[None]:
        """Audit a refusal to act on an existing credential: a proof that does not verify or
        does not speak for the owner, or a credential no longer usable. Failed attempts at a
        key are what an investigation of its misuse looks for first (EN 419 241-1 has a
        signing server log failed authentications). Refusals before the credential is found
        name nothing to attach them to, and an unreachable identity is no refusal."""
        try:
            yield
        except (Unauthenticated, PermissionDenied, FailedPrecondition) as refusal:
            self._audit_refusal(
                action, caller_label(caller), credential_id, refusal, self._clock.now()
            )
            raise

    def _audit_refusal(
        self, action: str, actor: str, credential_id: str, error: EgovError, now: dt.datetime
    ) -> None:
        try:
            self._repo.append_audit(
                AuditEvent(action, actor, credential_id, f"failure:{error.reason}", "{}"), now
            )
        except sqlalchemy.exc.SQLAlchemyError:
            log.error("could not audit a refusal", extra={"reason": error.reason})

    # -- audit ---------------------------------------------------------------------------------

    def _is_auditor(self, caller: Caller) -> bool:
        return self._policy.assurance.admin_scope in caller.scopes or _caller_listed(
            caller, self._policy.audit_callers
        )

    def _require_auditor(self, caller: Caller) -> None:
        if not self._is_auditor(caller):
            raise PermissionDenied("CALLER_NOT_ALLOWED", "the caller may not read the audit log")

    def audit_events(
        self, caller: Caller, *, credential_id: str, page_size: int, page_token: str
    ) -> tuple[list[AuditRecord], str]:
        self._require_auditor(caller)
        if page_size < 0 or page_size > 1000:
            raise InvalidArgument(
                "PAGE_SIZE_INVALID",
                "page_size is 0 to 1000",
                field_violations=(FieldViolation("page_size", "0 to 1000"),),
            )
        size = page_size or 100
        after = 0
        if page_token:
            # What we hand out: an audit sequence in ASCII digits (str.isdigit() also takes
            # "²" and Arabic-Indic digits; 19 digits can overflow a 64-bit column).
            if _AUDIT_PAGE_TOKEN.fullmatch(page_token) is None:
                raise InvalidArgument(
                    "PAGE_TOKEN_INVALID",
                    "page_token is not from a previous response",
                    field_violations=(FieldViolation("page_token", "invalid"),),
                )
            after = int(page_token)
        if credential_id and not _plausible_id(credential_id):
            return [], ""  # no credential has that id, so no entry names it
        page = self._repo.audit_records(
            after_sequence=after, credential_id=credential_id, limit=size + 1
        )
        more = len(page) > size
        page = page[:size]
        return page, (str(page[-1].sequence) if more else "")

    def verify_audit(self, caller: Caller) -> ChainVerdict:
        self._require_auditor(caller)
        # Head and entries from one snapshot: calls appending meanwhile are no tampering, and
        # entries removed from the end still leave the chain short of the head.
        with self._repo.audit_snapshot() as ((head_sequence, head_hash), entries):
            return verify_chain(entries, head_sequence, head_hash)


def _plausible_id(credential_id: str) -> bool:
    # The shape of the ids we issue: anything else (a NUL, which PostgreSQL refuses in text,
    # a trailing newline) names no credential and never reaches the database.
    return _CREDENTIAL_ID.fullmatch(credential_id) is not None


def _check_idempotency_key(key: str) -> None:
    # Printable: a NUL, which PostgreSQL refuses in text, is a bad request, not a server error.
    if not key or len(key) > 128 or not key.isprintable():
        raise InvalidArgument(
            "IDEMPOTENCY_KEY_MISSING",
            "idempotency_key is required (1 to 128 printable characters)",
            field_violations=(FieldViolation("idempotency_key", "required"),),
        )


def _credential_not_found() -> NotFound:
    return NotFound(
        "CREDENTIAL_NOT_FOUND",
        "no such credential",
        field_violations=(FieldViolation("credential_id", "unknown credential"),),
    )


def _caller_listed(caller: Caller, allowed: frozenset[str]) -> bool:
    """``allowed`` names mTLS service identities (``signing``) and, explicitly prefixed, OAuth
    client ids (``client:ops-console``): a bearer token never passes for a service identity."""
    if "*" in allowed:
        return True
    names: set[str] = set()
    if caller.peer_service:
        names.add(caller.peer_service)
    if caller.kind is CallerKind.SERVICE and caller.subject:
        names.add(caller.subject)
    if caller.kind is CallerKind.CLIENT and caller.subject:
        names.add(f"client:{caller.subject}")
    return bool(names & allowed)


def _is_owner(caller: Caller, credential: Credential) -> bool:
    """The caller is the credential's owner: a person calling with their own access token."""
    if caller.kind is not CallerKind.PERSON:
        return False
    identifier = caller.claims.get("identifier")
    subject = caller.claims.get("sub")
    return identifier == str(credential.owner) or (
        bool(credential.created_by) and subject == credential.created_by
    )


def _names_from_subject(subject: x509.Name) -> OwnerNames:
    def values(oid: x509.ObjectIdentifier) -> list[str]:
        return [str(a.value) for a in subject.get_attributes_for_oid(oid)]

    def split(items: list[str]) -> tuple[str, str]:
        # English (ASCII) first, Thai second, as subject_name writes them.
        en = next((v for v in items if v.isascii()), "")
        th = next((v for v in items if not v.isascii()), "")
        return en, th

    given_en, given_th = split(values(NameOID.GIVEN_NAME))
    family_en, family_th = split(values(NameOID.SURNAME))
    org_en, org_th = split(values(NameOID.ORGANIZATION_NAME))
    return OwnerNames(given_th, family_th, given_en, family_en, org_th, org_en)
