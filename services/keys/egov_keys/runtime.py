"""Composition root: settings -> repository, custody backends, trust services, credentials."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy.exc
from egov_common.clock import Clock, SystemClock

from egov_keys.adapters.software_custody import SoftwareCustody
from egov_keys.credentials import CredentialPolicy, CredentialService
from egov_keys.domain.authorization import AssurancePolicy, ProofVerifier
from egov_keys.domain.custody import CustodyBackend, KeyCustody
from egov_keys.domain.pki import TrustUrls
from egov_keys.kek_rotation import require_known_keks
from egov_keys.settings import KeysSettings
from egov_keys.storage.repository import KeysRepository, migrate
from egov_keys.trust import TrustConfig, TrustServices

__all__ = ["KeysRuntime", "bootstrap", "build_custodies", "build_runtime", "trust_services"]

log = logging.getLogger("egov.keys")


@dataclass
class KeysRuntime:
    settings: KeysSettings
    repository: KeysRepository
    trust: TrustServices
    credentials: CredentialService
    custodies: dict[CustodyBackend, KeyCustody]

    def close(self) -> None:
        self.close_parts(self.repository, self.custodies)

    @staticmethod
    def close_parts(
        repository: KeysRepository, custodies: dict[CustodyBackend, KeyCustody]
    ) -> None:
        for custody in custodies.values():
            close = getattr(custody, "close", None)
            if close is not None:
                close()
        repository.dispose()


def build_custodies(settings: KeysSettings) -> dict[CustodyBackend, KeyCustody]:
    custodies: dict[CustodyBackend, KeyCustody] = {}
    has_kek = bool(settings.software_kek.get_secret_value() or settings.software_kek_file)
    if settings.key_backend == "software" or has_kek:
        custodies[CustodyBackend.SOFTWARE] = SoftwareCustody(
            settings.kek(), settings.kek_id(), settings.previous_keks()
        )
    if settings.key_backend == "pkcs11":
        from egov_keys.adapters.pkcs11_custody import Pkcs11Custody

        custodies[CustodyBackend.PKCS11] = Pkcs11Custody(
            settings.pkcs11_module,
            settings.pkcs11_token_label,
            settings.pin(),
            settings.pkcs11_kek_label,
            previous_kek_labels=[
                label.strip()
                for label in settings.pkcs11_previous_kek_labels.split(",")
                if label.strip()
            ],
            unwrapped_key_seconds=settings.pkcs11_unwrapped_key_seconds,
        )
    return custodies


def trust_services(
    settings: KeysSettings,
    repository: KeysRepository,
    custodies: dict[CustodyBackend, KeyCustody],
    clock: Clock,
) -> TrustServices:
    config = TrustConfig(
        settings.organization,
        TrustUrls(settings.base_url()),
        settings.tsa_policy_oid,
        dt.timedelta(seconds=settings.crl_lifetime_seconds),
        dt.timedelta(seconds=settings.ocsp_validity_seconds),
    )
    return TrustServices(
        repository,
        custodies,
        config,
        clock,
        revocation_recheck_seconds=settings.authority_recheck_seconds,
    )


def _require_known_keks(
    repository: KeysRepository, custodies: dict[CustodyBackend, KeyCustody]
) -> None:
    software = custodies.get(CustodyBackend.SOFTWARE)
    if isinstance(software, SoftwareCustody):
        require_known_keks(repository, software)


def _check_keks(custodies: dict[CustodyBackend, KeyCustody]) -> None:
    """A PKCS#11 KEK that would let owner keys out of the token stops start-up
    (``KEK_UNWRAP_TEMPLATE_MISSING``)."""
    for custody in custodies.values():
        check_kek = getattr(custody, "check_kek", None)
        if check_kek is not None:
            check_kek()


def bootstrap(settings: KeysSettings, clock: Clock | None = None) -> list[str]:
    """Migrate, create the PKCS#11 KEK if needed, create the missing CA hierarchy."""
    migrate(settings.database_url)
    custodies = build_custodies(settings)
    repository = KeysRepository.from_url(settings.database_url)
    try:
        backend = CustodyBackend(settings.key_backend)
        ensure_kek = getattr(custodies[backend], "ensure_kek", None)
        if ensure_kek is not None:
            ensure_kek()
        # Before anything signs: a blob under a KEK we lack is named here, not a crypto error.
        _require_known_keks(repository, custodies)
        trust = trust_services(settings, repository, custodies, clock or SystemClock())
        for attempt in range(3):
            try:
                return trust.bootstrap(backend)
            except sqlalchemy.exc.IntegrityError:
                # Another process bootstrapped at the same moment: take what it stored.
                if attempt == 2:
                    raise
        return []
    finally:
        # Closes the PKCS#11 session too: the token's login belongs to the process, and the
        # runtime built next (or a forked worker) logs in again on its own session.
        KeysRuntime.close_parts(repository, custodies)


def build_runtime(
    settings: KeysSettings,
    proofs: ProofVerifier,
    clock: Clock | None = None,
    *,
    prepare_database: bool = True,
) -> KeysRuntime:
    """Everything the service needs, checked: the CA hierarchy is complete, every KEK its blobs
    name is configured, and every CA/OCSP/TSA key signs. ``prepare_database``: migrate (and,
    with ``auto_bootstrap``, create the missing hierarchy) first; a forked worker skips this,
    its parent did it."""
    clock = clock or SystemClock()
    if not prepare_database:
        pass
    elif settings.auto_bootstrap:
        created = bootstrap(settings, clock)
        if created:
            log.info("created certification authorities", extra={"authorities": created})
    else:
        migrate(settings.database_url)
    repository = KeysRepository.from_url(settings.database_url)
    custodies = build_custodies(settings)
    try:
        _require_known_keks(repository, custodies)
        _check_keks(custodies)
        trust = trust_services(settings, repository, custodies, clock)
        trust.load()
        trust.self_test()
    except BaseException:
        KeysRuntime.close_parts(repository, custodies)
        raise
    policy = CredentialPolicy(
        assurance=AssurancePolicy(
            min_aal=settings.min_aal,
            min_ial_issue=settings.min_ial_issue,
            ial_order=tuple(v.strip() for v in settings.ial_order.split(",") if v.strip()),
            max_auth_age=dt.timedelta(seconds=settings.max_auth_age_seconds),
            max_manage_auth_age=dt.timedelta(seconds=settings.max_manage_auth_age_seconds),
            seal_scope=settings.seal_scope,
            admin_scope=settings.admin_scope,
        ),
        sad_lifetime=dt.timedelta(seconds=settings.sad_lifetime_seconds),
        max_signatures=settings.max_signatures_per_authorization,
        certificate_lifetime=dt.timedelta(days=settings.certificate_lifetime_days),
        sign_callers=KeysSettings.split(settings.sign_callers),
        audit_callers=KeysSettings.split(settings.audit_callers),
        default_backend=CustodyBackend(settings.key_backend),
    )
    credentials = CredentialService(repository, trust, proofs, policy, clock)
    return KeysRuntime(settings, repository, trust, credentials, custodies)
