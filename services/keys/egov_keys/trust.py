"""The CA hierarchy and its trust services: bootstrap, CRLs, OCSP, time-stamps.

Application layer: glues the pure domain (``domain/``) to storage and custody.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from egov_common.clock import Clock
from egov_common.errors import FailedPrecondition, NotFound, Unavailable

from egov_keys.domain import pki
from egov_keys.domain.algorithms import KeyAlgorithm, verify_digest_signature
from egov_keys.domain.custody import CustodyBackend, KeyCustody, KeyReference, KeyRole
from egov_keys.domain.model import AuditEvent, RevocationReason
from egov_keys.domain.pki import Authority, CaRole, OwnerKind, TrustUrls
from egov_keys.domain.revocation import CertificateState, OcspAnswer, build_crl, respond_ocsp
from egov_keys.domain.tsa import TimeStampAnswer, issue_timestamp, unavailable
from egov_keys.storage.repository import CrlRow, KeysRepository, StaleAuthority

__all__ = ["TrustConfig", "TrustServices", "new_serial"]

log = logging.getLogger("egov.keys.trust")

ISSUING_CAS = (CaRole.NATURAL_PERSON, CaRole.LEGAL_PERSON)
#: Every authority whose certificates an OCSP signer answers for.
OCSP_SCOPES = (CaRole.ROOT, CaRole.NATURAL_PERSON, CaRole.LEGAL_PERSON)
#: Between a revoked authority's name and its serial: the row it keeps once replaced.
_RETIRED = "@"


def new_serial() -> int:
    """A random positive 159-bit serial (RFC 5280 4.1.2.2: at most 20 octets, unpredictable).

    The certificates table's primary key makes a (vanishingly unlikely) collision fail the
    insert instead of issuing a duplicate.
    """
    return x509.random_serial_number()


class TrustConfig:
    def __init__(
        self,
        organization: str,
        urls: TrustUrls,
        tsa_policy_oid: str,
        crl_lifetime: dt.timedelta,
        ocsp_validity: dt.timedelta,
    ) -> None:
        self.organization = organization
        self.urls = urls
        self.tsa_policy_oid = tsa_policy_oid
        self.crl_lifetime = crl_lifetime
        self.ocsp_validity = ocsp_validity


class TrustServices:
    def __init__(
        self,
        repository: KeysRepository,
        custodies: dict[CustodyBackend, KeyCustody],
        config: TrustConfig,
        clock: Clock,
        *,
        revocation_recheck_seconds: float = 5.0,
    ) -> None:
        self._repo = repository
        self._custodies = custodies
        self._config = config
        self._clock = clock
        self._authorities: dict[str, Authority] = {}
        # Revoked authorities replaced by bootstrap, read when a chain runs through one.
        self._retired: dict[str, Authority] = {}
        self._crl_cache: dict[str, tuple[int, CrlRow]] = {}
        self._crl_lock = threading.Lock()
        # Which loaded authorities are revoked, as last read (any process may revoke one).
        self._recheck_seconds = revocation_recheck_seconds
        self._revoked: frozenset[str] = frozenset()
        self._revoked_read_at: float | None = None
        self._revoked_lock = threading.Lock()
        self._unusable_replacements: set[str] = set()

    @property
    def urls(self) -> TrustUrls:
        return self._config.urls

    @property
    def tsa_policy_oid(self) -> str:
        return self._config.tsa_policy_oid

    def custody_for(self, backend: CustodyBackend) -> KeyCustody:
        return self._custodies[backend]

    # -- hierarchy -----------------------------------------------------------------------------

    def is_bootstrapped(self) -> bool:
        names = set(self._repo.authorities())
        return {a for a in self.required_names()} <= names

    @staticmethod
    def required_names() -> tuple[str, ...]:
        return (
            CaRole.ROOT.value,
            *(ca.value for ca in ISSUING_CAS),
            *(f"ocsp-{ca.value}" for ca in OCSP_SCOPES),
            "tsa",
        )

    def bootstrap(self, backend: CustodyBackend) -> list[str]:
        """Create whatever part of the hierarchy is missing (idempotent); returns what it made.

        Keys are generated in ``backend`` (token objects in a PKCS#11 token); a certificate is
        signed where its issuer's key is (a root kept in software signs a CA made in a token).
        """
        custody = self._custodies[backend]
        created: list[str] = []
        existing = self._load()
        now = self._clock.now()
        org = self._config.organization
        urls = self._config.urls
        # A revoked issuing CA first: retiring it re-points its OCSP signer at the retired row.
        issuing = {ca.value for ca in ISSUING_CAS}
        for name in sorted(self._revoked_in(existing), key=lambda n: (n not in issuing, n)):
            self._retire(existing.pop(name), now)
            with self._crl_lock:
                self._crl_cache.pop(name, None)
            if name in issuing:
                log.warning(
                    "%s is revoked: a new %s CA replaces it; its credentials stay refused "
                    "(ISSUER_REVOKED) and their owners renew them under the new one",
                    name,
                    name,
                )

        def key_for(name: str, algorithm: KeyAlgorithm) -> KeyReference:
            # A fresh key id each attempt: a crashed bootstrap leaves at most an unused key.
            return custody.generate(f"{name}-{new_serial():x}"[:60], algorithm, KeyRole.SERVICE)

        def store(authority: Authority) -> None:
            cert = authority.certificate
            self._repo.insert_authority(
                authority.name,
                authority.issuer,
                authority.key,
                cert.public_bytes(Encoding.DER),
                cert.serial_number,
                cert.not_valid_after_utc,
                AuditEvent(
                    "ca.create",
                    "bootstrap",
                    "",
                    "success",
                    json.dumps(
                        {
                            "authority": authority.name,
                            "serial": f"{cert.serial_number:x}",
                            "backend": authority.key.backend.value,
                        }
                    ),
                ),
                now,
            )
            existing[authority.name] = authority
            created.append(authority.name)

        if CaRole.ROOT.value not in existing:
            store(
                pki.make_root(
                    custody,
                    key_for("root", KeyAlgorithm.ECDSA_P384),
                    org,
                    new_serial(),
                    now,
                    dt.timedelta(days=20 * 365),
                )
            )
        root = existing[CaRole.ROOT.value]
        for role in ISSUING_CAS:
            if role.value not in existing:
                store(
                    pki.make_issuing_ca(
                        self._custody(root),
                        root,
                        role,
                        key_for(role.value, KeyAlgorithm.ECDSA_P256),
                        org,
                        urls,
                        new_serial(),
                        now,
                        dt.timedelta(days=10 * 365),
                    )
                )
        for role in OCSP_SCOPES:
            name = f"ocsp-{role.value}"
            if name not in existing:
                store(
                    pki.make_ocsp_signer(
                        self._custody(existing[role.value]),
                        existing[role.value],
                        key_for(name, KeyAlgorithm.ECDSA_P256),
                        org,
                        new_serial(),
                        now,
                        dt.timedelta(days=2 * 365),
                    )
                )
        if "tsa" not in existing:
            store(
                pki.make_tsa(
                    self._custody(root),
                    root,
                    key_for("tsa", KeyAlgorithm.ECDSA_P256),
                    org,
                    urls,
                    new_serial(),
                    now,
                    dt.timedelta(days=5 * 365),
                )
            )
        with self._revoked_lock:
            self._authorities, self._revoked_read_at = existing, None
        return created

    def _load(self) -> dict[str, Authority]:
        """The authorities in use (a revoked one that was replaced keeps a retired row)."""
        return {
            name: Authority(
                name, row.key, x509.load_der_x509_certificate(row.certificate_der), row.issuer
            )
            for name, row in self._repo.authorities().items()
            if _RETIRED not in name
        }

    def _retire(self, authority: Authority, now: dt.datetime) -> None:
        retired = f"{authority.name}{_RETIRED}{authority.certificate.serial_number:x}"
        self._repo.retire_authority(
            authority.name,
            retired,
            AuditEvent(
                "ca.retire",
                "bootstrap",
                "",
                "success",
                json.dumps({"authority": authority.name, "retired_as": retired}),
            ),
            now,
        )

    # -- revoked authorities -------------------------------------------------------------------

    def revoke_authority(self, name: str, reason: RevocationReason, actor: str) -> bool:
        """Revoke an authority's certificate (an operator's act, ``python -m egov_keys
        revoke-authority``): its issuer's CRL and OCSP say so at once, and every process stops
        using it within ``revocation_recheck_seconds``. False when it was revoked already.

        NotFound (AUTHORITY_NOT_FOUND) for a name we do not run; FailedPrecondition
        (ROOT_NOT_REVOCABLE) for the root, which no CRL of ours can list: it is withdrawn from
        relying parties' trust stores instead."""
        authority = self._load().get(name)
        if authority is None:
            raise NotFound("AUTHORITY_NOT_FOUND", "no such certification authority")
        if authority.issuer == authority.name:
            raise FailedPrecondition(
                "ROOT_NOT_REVOCABLE",
                "the root is self-signed: withdraw it from relying parties' trust stores",
            )
        serial = authority.certificate.serial_number
        event = AuditEvent(
            "ca.revoke",
            actor,
            "",
            "success",
            json.dumps({"authority": name, "serial": f"{serial:x}", "reason": reason.value}),
        )
        revoked = self._repo.revoke_authority(
            authority.issuer, serial, reason, event, self._clock.now()
        )
        with self._revoked_lock:
            self._revoked_read_at = None
        return revoked

    def _revoked_in(self, authorities: dict[str, Authority]) -> frozenset[str]:
        """The names among ``authorities`` whose certificate is revoked, or whose issuer's is
        (an issuing CA's OCSP signer certifies nothing once its CA is revoked), or whose issuer
        was retired. The issuer is the one stored now: an OCSP signer read before bootstrap
        replaced its CA names the new CA here, and only the database knows better."""
        stored = self._repo.authority_certificates()
        issuers: dict[str, str] = {}
        revoked: set[str] = set()
        for name, authority in authorities.items():
            issuer, is_revoked = stored.get(
                f"{authority.certificate.serial_number:x}", (authority.issuer, False)
            )
            issuers[name] = issuer
            if is_revoked:
                revoked.add(name)
        while True:
            certified_by_revoked = {
                name
                for name, issuer in issuers.items()
                if name not in revoked
                and issuer != name
                and (issuer in revoked or _RETIRED in issuer)
            }
            if not certified_by_revoked:
                return frozenset(revoked)
            revoked |= certified_by_revoked

    def revoked_authorities(self) -> frozenset[str]:
        """The names of the authorities in use whose certificates are revoked, read again at
        most every ``revocation_recheck_seconds``. When one is, the hierarchy is read again
        too: once ``bootstrap`` replaced a revoked OCSP signer or TSA, the new one is used."""
        with self._revoked_lock:
            read_at = self._revoked_read_at
            if read_at is not None and time.monotonic() - read_at < self._recheck_seconds:
                return self._revoked
            revoked = self._revoked_in(self._authorities)
            if revoked:
                fresh = self._load()
                renewed = [
                    name
                    for name in revoked
                    if name in fresh
                    and fresh[name].certificate != self._authorities[name].certificate
                ]
                replaced = [n for n in renewed if fresh[n].key.backend in self._custodies]
                for name in sorted(set(renewed) - set(replaced) - self._unusable_replacements):
                    # once per replacement: this process goes on refusing what needs it
                    self._unusable_replacements.add(name)
                    log.error(
                        "the replacement of revoked %s has its key in %s, which this process "
                        "is not configured with: it stays refused here until it is",
                        name,
                        fresh[name].key.backend.value,
                    )
                if replaced:
                    log.warning("using the replacements of revoked %s", ", ".join(replaced))
                    self._authorities = {
                        **self._authorities,
                        **{name: fresh[name] for name in replaced},
                    }
                    with self._crl_lock:  # a cached CRL of a replaced CA is signed by its old key
                        for name in replaced:
                            self._crl_cache.pop(name, None)
                    revoked = self._revoked_in(self._authorities)
            self._revoked, self._revoked_read_at = revoked, time.monotonic()
            return revoked

    def reread(self) -> None:
        """Read revocations and replacements now, not at the next check: this process met
        something (a certificate, the database's key of a name) of an authority replaced
        since it last read them."""
        with self._revoked_lock:
            self._revoked_read_at = None
        self.revoked_authorities()

    def require_unrevoked(self, name: str) -> None:
        """FailedPrecondition (ISSUER_REVOKED) when authority ``name`` is revoked (a retired one
        was revoked before bootstrap replaced it)."""
        if _RETIRED in name or name in self.revoked_authorities():
            raise FailedPrecondition(
                "ISSUER_REVOKED",
                f"the certificate of {name} is revoked: it issues and signs no more",
            )

    def load(self) -> None:
        """Read the hierarchy from the database; FAILED_PRECONDITION when it is incomplete."""
        authorities = self._load()
        missing = [n for n in self.required_names() if n not in authorities]
        if missing:
            raise FailedPrecondition(
                "CA_NOT_BOOTSTRAPPED", f"run 'python -m egov_keys bootstrap' (missing {missing})"
            )
        for authority in authorities.values():
            if authority.key.backend not in self._custodies:
                raise FailedPrecondition(
                    "KEY_BACKEND_UNAVAILABLE",
                    f"{authority.name} key is in {authority.key.backend.value}, not configured",
                )
        with self._revoked_lock:
            self._authorities, self._revoked_read_at = authorities, None

    def self_test(self) -> None:
        """Sign and verify with every authority key: a wrong KEK, PIN or token fails start-up
        here, not on the first OCSP request."""
        for authority in self._authorities.values():
            algorithm = authority.key.algorithm
            digest = algorithm.natural_hash.digest(b"egov-keys self-test")
            try:
                signature = self._custody(authority).sign_digest(
                    authority.key, digest, algorithm.natural_hash, algorithm.default_scheme
                )
                verify_digest_signature(
                    authority.certificate.public_key(),
                    signature,
                    digest,
                    algorithm.natural_hash,
                    algorithm.default_scheme,
                )
            except Exception as exc:
                raise FailedPrecondition(
                    "CA_KEY_UNUSABLE",
                    f"the {authority.name} key cannot sign with this configuration "
                    f"(wrong KEK, PIN or token?): {type(exc).__name__}",
                ) from None

    def authority(self, name: str) -> Authority:
        """The authority in use under ``name``: after bootstrap replaced a revoked one (in any
        process), the replacement from the next check of revocations on."""
        self.revoked_authorities()
        found = self._authorities.get(name)
        if found is None:
            raise NotFound("AUTHORITY_NOT_FOUND", "no such certification authority")
        return found

    def authorities(self) -> dict[str, Authority]:
        self.revoked_authorities()
        return dict(self._authorities)

    def issuing_ca(self, kind: OwnerKind) -> Authority:
        """The CA that issues ``kind``'s credentials; FailedPrecondition (ISSUER_REVOKED) when
        its certificate is revoked."""
        self.require_unrevoked(kind.issuing_ca.value)
        return self.authority(kind.issuing_ca.value)

    def _in_chain(self, name: str) -> Authority:
        """An authority in use or, for what a replaced one issued, its retired row."""
        found = self._authorities.get(name) or self._retired.get(name)
        if found is None and _RETIRED in name:
            row = self._repo.authorities().get(name)
            if row is not None:
                found = Authority(
                    name, row.key, x509.load_der_x509_certificate(row.certificate_der), row.issuer
                )
                self._retired[name] = found
        if found is None:
            raise NotFound("AUTHORITY_NOT_FOUND", "no such certification authority")
        return found

    def chain_der(self, issuer: str, *, issued_der: bytes | None = None) -> list[bytes]:
        """Certificates from ``issuer`` up to and including the root (DER). With ``issued_der``,
        a certificate ``issuer`` issued: when this process still holds the CA that a replacement
        has taken over from (another process ran bootstrap, and the revocations were last read
        before), it reads them again now rather than chain the certificate to the wrong key."""
        if issued_der is not None and not self._issued_by(issued_der, self._in_chain(issuer)):
            self.reread()
        out: list[bytes] = []
        name = issuer
        for _ in range(5):
            authority = self._in_chain(name)
            out.append(authority.certificate.public_bytes(Encoding.DER))
            if authority.issuer == authority.name:
                break
            name = authority.issuer
        return out

    @staticmethod
    def _issued_by(issued_der: bytes, authority: Authority) -> bool:
        """Whether the certificate names ``authority``'s key as its issuer's (RFC 5280
        authority key identifier; True when it names none)."""
        try:
            aki = (
                x509.load_der_x509_certificate(issued_der)
                .extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
                .value.key_identifier
            )
        except (ValueError, x509.ExtensionNotFound):
            return True
        own = x509.SubjectKeyIdentifier.from_public_key(authority.certificate.public_key())
        return aki is None or aki == own.digest

    def certificate_der(self, name: str) -> bytes:
        return self.authority(name).certificate.public_bytes(Encoding.DER)

    def _custody(self, authority: Authority) -> KeyCustody:
        return self._custodies[authority.key.backend]

    # -- CRL -----------------------------------------------------------------------------------

    def crl(self, name: str) -> bytes:
        """The current CRL of a CA: regenerated after a revocation and before half its life has
        passed; shared by every process through the database (CRL numbers only go up)."""
        if name not in (CaRole.ROOT.value, *(ca.value for ca in ISSUING_CAS)):
            raise NotFound("CRL_NOT_FOUND", "no CRL for that name")
        for _ in range(2):
            ca = self.authority(name)
            state = self._repo.issuer_state(name)
            if state is not None and state[0] == ca.key.key_id:
                try:
                    return self._current_crl(ca, state[1])
                except StaleAuthority:
                    pass  # replaced while this CRL was being made: it is not stored
            # Bootstrap replaced the CA this process holds (in any process, since this one last
            # read the hierarchy): neither its cached CRL nor a new one under its key will do.
            self.reread()
        raise Unavailable(
            "CA_BEING_REPLACED", f"{name} is being replaced: its CRL is published again shortly"
        )

    def _current_crl(self, ca: Authority, epoch: int) -> bytes:
        now = self._clock.now()
        with self._crl_lock:
            cached = self._crl_cache.get(ca.name)
            if cached is None or not self._fresh(cached[1], epoch, now):
                latest = self._repo.latest_crl(ca.name)
                if latest is None or not self._fresh(latest, epoch, now):
                    # A CA that replaced a revoked one under its name (and its issuer name)
                    # numbers on from its predecessors': RFC 5280 5.2.3 has CRL numbers only go
                    # up for an issuer, and a validator caching by name would take a lower
                    # number for an older CRL.
                    last = (
                        latest.number
                        if latest
                        else self._repo.highest_retired_crl_number(ca.name + _RETIRED)
                    )
                    latest = self._issue_crl(ca, last + 1, epoch, now)
                self._crl_cache[ca.name] = (epoch, latest)
            return self._crl_cache[ca.name][1].der

    def _fresh(self, crl: CrlRow, epoch: int, now: dt.datetime) -> bool:
        half_life = (crl.next_update - crl.this_update) / 2
        return crl.revocation_epoch >= epoch and now < crl.this_update + half_life

    def _issue_crl(self, ca: Authority, number: int, epoch: int, now: dt.datetime) -> CrlRow:
        for _ in range(5):
            revoked = [
                CertificateState(row.serial, row.status, row.revoked_at, row.reason)
                for row in self._repo.revoked_certificates(ca.name)
            ]
            this_update = now.replace(microsecond=0)
            next_update = this_update + self._config.crl_lifetime
            crl = build_crl(self._custody(ca), ca, revoked, number, this_update, next_update)
            row = CrlRow(
                ca.name, number, epoch, this_update, next_update, crl.public_bytes(Encoding.DER)
            )
            event = AuditEvent(
                "crl.issue",
                "keys",
                "",
                "success",
                json.dumps({"authority": ca.name, "crl_number": number, "revoked": len(revoked)}),
            )
            if self._repo.store_crl(row, ca.key.key_id, event, now):
                return row
            # Another process issued this number first: use theirs if it is current.
            latest = self._repo.latest_crl(ca.name)
            if latest is not None and self._fresh(latest, epoch, now):
                return latest
            number = (latest.number if latest else number) + 1
        raise FailedPrecondition("CRL_CONTENTION", "could not publish a CRL")

    def refresh_crl(self, name: str) -> None:
        """Regenerate ``name``'s CRL now (after a revocation). A retired CA publishes none:
        it is revoked, so is everything it issued."""
        if _RETIRED in name:
            return
        try:
            self.crl(name)
        except Exception:  # the next fetch regenerates it; revocation itself already committed
            log.exception("CRL refresh failed", extra={"authority": name})

    # -- OCSP, TSA -----------------------------------------------------------------------------

    def ocsp(self, request_der: bytes) -> OcspAnswer:
        revoked = self.revoked_authorities()
        cas = [self.authority(role.value) for role in OCSP_SCOPES]
        responders = {role.value: self.authority(f"ocsp-{role.value}") for role in OCSP_SCOPES}
        withdrawn = {scope for scope, responder in responders.items() if responder.name in revoked}

        def lookup(issuer: str, serial: int) -> CertificateState | None:
            row = self._repo.certificate_status(issuer, serial)
            if row is None:
                return None
            return CertificateState(row.serial, row.status, row.revoked_at, row.reason)

        return respond_ocsp(
            request_der,
            self._custody,
            cas,
            responders,
            lookup,
            self._clock.now(),
            self._config.ocsp_validity,
            withdrawn,
        )

    def timestamp(self, request_der: bytes) -> TimeStampAnswer:
        """A time-stamp token, audited before it is handed out (``timestamp.issue``: serial,
        time, imprint, policy, TSA certificate), so that the TSA can later say what it
        stamped (ETSI EN 319 421 7.10). A token whose record cannot be written is not given:
        the answer is systemFailure."""
        if "tsa" in self.revoked_authorities():
            return unavailable("the time-stamp authority's certificate is revoked")
        tsa = self.authority("tsa")
        now = self._clock.now()
        answer = issue_timestamp(
            request_der, self._custody(tsa), tsa, self._config.tsa_policy_oid, now
        )
        if not answer.granted:
            return answer
        details = {
            "authority": tsa.name,
            "certificate_serial": f"{tsa.certificate.serial_number:x}",
            **answer.record,
        }
        try:
            self._repo.append_audit(
                AuditEvent("timestamp.issue", "tsa", "", "success", json.dumps(details)), now
            )
        except Exception as exc:
            log.error("time-stamp token not audited, so not issued: %s", type(exc).__name__)
            return unavailable("the time-stamp could not be recorded")
        return answer
