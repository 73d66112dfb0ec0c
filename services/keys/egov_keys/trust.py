"""The CA hierarchy and its trust services: bootstrap, CRLs, OCSP, time-stamps.

Application layer: glues the pure domain (``domain/``) to storage and custody.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from egov_common.clock import Clock
from egov_common.errors import FailedPrecondition, NotFound

from egov_keys.domain import pki
from egov_keys.domain.algorithms import KeyAlgorithm, verify_digest_signature
from egov_keys.domain.custody import CustodyBackend, KeyCustody, KeyReference, KeyRole
from egov_keys.domain.model import AuditEvent
from egov_keys.domain.pki import Authority, CaRole, OwnerKind, TrustUrls
from egov_keys.domain.revocation import CertificateState, OcspAnswer, build_crl, respond_ocsp
from egov_keys.domain.tsa import TimeStampAnswer, issue_timestamp
from egov_keys.storage.repository import CrlRow, KeysRepository

__all__ = ["TrustConfig", "TrustServices", "new_serial"]

log = logging.getLogger("egov.keys.trust")

ISSUING_CAS = (CaRole.NATURAL_PERSON, CaRole.LEGAL_PERSON)
#: Every authority whose certificates an OCSP signer answers for.
OCSP_SCOPES = (CaRole.ROOT, CaRole.NATURAL_PERSON, CaRole.LEGAL_PERSON)


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
    ) -> None:
        self._repo = repository
        self._custodies = custodies
        self._config = config
        self._clock = clock
        self._authorities: dict[str, Authority] = {}
        self._crl_cache: dict[str, tuple[int, CrlRow]] = {}
        self._crl_lock = threading.Lock()

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

        Keys are generated in ``backend`` (token objects in a PKCS#11 token).
        """
        custody = self._custodies[backend]
        created: list[str] = []
        existing = self._load()
        now = self._clock.now()
        org = self._config.organization
        urls = self._config.urls

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
                        custody,
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
                        custody,
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
                    custody,
                    root,
                    key_for("tsa", KeyAlgorithm.ECDSA_P256),
                    org,
                    urls,
                    new_serial(),
                    now,
                    dt.timedelta(days=5 * 365),
                )
            )
        self._authorities = existing
        return created

    def _load(self) -> dict[str, Authority]:
        return {
            name: Authority(
                name, row.key, x509.load_der_x509_certificate(row.certificate_der), row.issuer
            )
            for name, row in self._repo.authorities().items()
        }

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
        self._authorities = authorities

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
        found = self._authorities.get(name)
        if found is None:
            raise NotFound("AUTHORITY_NOT_FOUND", "no such certification authority")
        return found

    def authorities(self) -> dict[str, Authority]:
        return dict(self._authorities)

    def issuing_ca(self, kind: OwnerKind) -> Authority:
        return self.authority(kind.issuing_ca.value)

    def chain_der(self, issuer: str) -> list[bytes]:
        """Certificates from ``issuer`` up to and including the root (DER)."""
        out: list[bytes] = []
        name = issuer
        for _ in range(5):
            authority = self.authority(name)
            out.append(authority.certificate.public_bytes(Encoding.DER))
            if authority.issuer == authority.name:
                break
            name = authority.issuer
        return out

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
        ca = self.authority(name)
        now = self._clock.now()
        epoch = self._repo.revocation_epoch(name)
        with self._crl_lock:
            cached = self._crl_cache.get(name)
            if cached is None or not self._fresh(cached[1], epoch, now):
                latest = self._repo.latest_crl(name)
                if latest is None or not self._fresh(latest, epoch, now):
                    latest = self._issue_crl(ca, (latest.number if latest else 0) + 1, epoch, now)
                self._crl_cache[name] = (epoch, latest)
            return self._crl_cache[name][1].der

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
            if self._repo.store_crl(row, event, now):
                return row
            # Another process issued this number first: use theirs if it is current.
            latest = self._repo.latest_crl(ca.name)
            if latest is not None and self._fresh(latest, epoch, now):
                return latest
            number = (latest.number if latest else number) + 1
        raise FailedPrecondition("CRL_CONTENTION", "could not publish a CRL")

    def refresh_crl(self, name: str) -> None:
        """Regenerate ``name``'s CRL now (after a revocation)."""
        try:
            self.crl(name)
        except Exception:  # the next fetch regenerates it; revocation itself already committed
            log.exception("CRL refresh failed", extra={"authority": name})

    # -- OCSP, TSA -----------------------------------------------------------------------------

    def ocsp(self, request_der: bytes) -> OcspAnswer:
        cas = [self.authority(role.value) for role in OCSP_SCOPES]
        responders = {role.value: self.authority(f"ocsp-{role.value}") for role in OCSP_SCOPES}
        custody = self._custody(responders[CaRole.ROOT.value])

        def lookup(issuer: str, serial: int) -> CertificateState | None:
            row = self._repo.certificate_status(issuer, serial)
            if row is None:
                return None
            return CertificateState(row.serial, row.status, row.revoked_at, row.reason)

        return respond_ocsp(
            request_der,
            custody,
            cas,
            responders,
            lookup,
            self._clock.now(),
            self._config.ocsp_validity,
        )

    def timestamp(self, request_der: bytes) -> TimeStampAnswer:
        tsa = self.authority("tsa")
        return issue_timestamp(
            request_der, self._custody(tsa), tsa, self._config.tsa_policy_oid, self._clock.now()
        )
