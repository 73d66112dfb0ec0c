"""Certificate profiles of the CA hierarchy (ETSI EN 319 412-2 / -3, RFC 5280).

root
 +-- natural-person CA  -> natural persons' signing certificates, its OCSP signer
 +-- legal-person CA    -> juristic persons' signing and agencies' e-seal certificates,
 |                         its OCSP signer
 +-- TSA certificate (critical EKU timeStamping), root's OCSP signer

Every certificate below the root carries AIA (caIssuers + OCSP) and a CRL distribution point
pointing at this service's own HTTP listener.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from egov_pki.identifiers import Identifier
from egov_pki.profiles import (
    POLICY_ETSI_NCP_PLUS,
    POLICY_LEGAL_PERSON,
    POLICY_NATURAL_PERSON,
    POLICY_TSA,
)

from egov_keys.domain.custody import KeyCustody, KeyReference
from egov_keys.domain.external_signing import sign_certificate

__all__ = [
    "Authority",
    "CaRole",
    "OwnerKind",
    "SubjectDetails",
    "TrustUrls",
    "issue_end_entity",
    "make_issuing_ca",
    "make_ocsp_signer",
    "make_root",
    "make_tsa",
    "subject_name",
]


class CaRole(enum.StrEnum):
    ROOT = "root"
    NATURAL_PERSON = "natural-person"
    LEGAL_PERSON = "legal-person"


class OwnerKind(enum.StrEnum):
    NATURAL_PERSON = "natural-person"
    LEGAL_PERSON = "legal-person"
    ELECTRONIC_SEAL = "electronic-seal"

    @property
    def issuing_ca(self) -> CaRole:
        if self is OwnerKind.NATURAL_PERSON:
            return CaRole.NATURAL_PERSON
        return CaRole.LEGAL_PERSON


@dataclass(frozen=True, slots=True)
class TrustUrls:
    """Where this service publishes CA certificates, CRLs, OCSP and the TSA (HTTP)."""

    base_url: str

    def _base(self) -> str:
        return self.base_url.rstrip("/")

    def ca_certificate(self, name: str) -> str:
        return f"{self._base()}/ca/{name}.crt"

    def crl(self, name: str) -> str:
        return f"{self._base()}/crl/{name}.crl"

    @property
    def ocsp(self) -> str:
        return f"{self._base()}/ocsp"

    @property
    def tsa(self) -> str:
        return f"{self._base()}/tsa"


@dataclass(frozen=True, slots=True)
class Authority:
    """A certificate whose key this service holds: a CA, an OCSP signer or the TSA."""

    name: str
    key: KeyReference
    certificate: x509.Certificate
    issuer: str


@dataclass(frozen=True, slots=True)
class SubjectDetails:
    """Who a signing certificate names (the identifier is already validated)."""

    kind: OwnerKind
    owner: Identifier
    given_name_en: str = ""
    family_name_en: str = ""
    given_name_th: str = ""
    family_name_th: str = ""
    organization_en: str = ""
    organization_th: str = ""


def subject_name(details: SubjectDetails) -> x509.Name:
    """The ETSI subject DN; raises ValueError when the owner does not fit the kind or names
    are missing."""
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "TH")]
    if details.kind is OwnerKind.NATURAL_PERSON:
        if not details.owner.is_natural_person:
            raise ValueError("a natural person credential needs a TH-PID or PASSPORT owner")
        # EN 319 412-1 5.1.3 semantics identifier: PNOTH-<id> (or PAS<country>-<number>).
        serial = details.owner.etsi_semantic_identifier()
        english = " ".join(p for p in (details.given_name_en, details.family_name_en) if p)
        thai = " ".join(p for p in (details.given_name_th, details.family_name_th) if p)
        if not (details.given_name_en and details.family_name_en) and not (
            details.given_name_th and details.family_name_th
        ):
            raise ValueError("a natural person needs a given and a family name")
        # EN 319 412-2 5.2.6: givenName and surname; Thai and English forms both kept (UTF-8).
        for value in (details.given_name_en, details.given_name_th):
            if value:
                attrs.append(x509.NameAttribute(NameOID.GIVEN_NAME, value))
        for value in (details.family_name_en, details.family_name_th):
            if value:
                attrs.append(x509.NameAttribute(NameOID.SURNAME, value))
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, english or thai))
    else:
        if not details.owner.is_juristic_person:
            raise ValueError("a legal person credential needs a TH-JUR owner")
        org_id = details.owner.etsi_semantic_identifier()
        if not (details.organization_en or details.organization_th):
            raise ValueError("a juristic person needs an organisation name")
        for value in (details.organization_en, details.organization_th):
            if value:
                attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, value))
        # EN 319 412-1 5.1.4 semantics identifier, required by EN 319 412-3 for legal persons.
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, org_id))
        attrs.append(
            x509.NameAttribute(
                NameOID.COMMON_NAME, details.organization_en or details.organization_th
            )
        )
    return x509.Name(attrs)


def _ca_name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "TH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]),
            # X.520 ub-common-name is 64 characters.
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _public(key: KeyReference) -> CertificateIssuerPublicKeyTypes:
    public = key.public_key()
    return public  # type: ignore[return-value]


def _revocation_pointers(
    builder: x509.CertificateBuilder, urls: TrustUrls, issuer: str
) -> x509.CertificateBuilder:
    return builder.add_extension(
        x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(urls.ca_certificate(issuer)),
                ),
                x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp)
                ),
            ]
        ),
        critical=False,
    ).add_extension(
        x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(urls.crl(issuer))],
                    relative_name=None,
                    reasons=None,
                    crl_issuer=None,
                )
            ]
        ),
        critical=False,
    )


def _base(
    subject: x509.Name,
    subject_key: KeyReference,
    issuer: Authority | None,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    issuer_name = issuer.certificate.subject if issuer else subject
    issuer_public = issuer.key.public_key() if issuer else subject_key.public_key()
    if issuer is not None:
        # Never outlive the issuer (RFC 5280 path validation would reject the tail anyway).
        not_after = min(not_after, issuer.certificate.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(_public(subject_key))
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(_public(subject_key)), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),  # type: ignore[arg-type]
            critical=False,
        )
    )


def make_root(
    custody: KeyCustody,
    key: KeyReference,
    organization: str,
    serial: int,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> Authority:
    name = _ca_name(f"{organization} Root CA", organization)
    builder = (
        _base(name, key, None, serial, now - dt.timedelta(minutes=5), now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
    )
    cert = sign_certificate(builder, custody, key)
    return Authority(CaRole.ROOT.value, key, cert, CaRole.ROOT.value)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def make_issuing_ca(
    custody: KeyCustody,
    root: Authority,
    role: CaRole,
    key: KeyReference,
    organization: str,
    urls: TrustUrls,
    serial: int,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> Authority:
    title = {CaRole.NATURAL_PERSON: "Natural Person CA", CaRole.LEGAL_PERSON: "Legal Person CA"}
    name = _ca_name(f"{organization} {title[role]}", organization)
    policy = POLICY_NATURAL_PERSON if role is CaRole.NATURAL_PERSON else POLICY_LEGAL_PERSON
    builder = (
        _base(name, key, root, serial, now - dt.timedelta(minutes=5), now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_qualified_policies(policy), critical=False)
    )
    builder = _revocation_pointers(builder, urls, root.name)
    cert = sign_certificate(builder, custody, root.key)
    return Authority(role.value, key, cert, root.name)


def make_ocsp_signer(
    custody: KeyCustody,
    ca: Authority,
    key: KeyReference,
    organization: str,
    serial: int,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> Authority:
    """A delegated OCSP responder certificate for ``ca`` (RFC 6960 section 4.2.2.2)."""
    name = _ca_name(f"OCSP Responder {ca.name}", organization)
    builder = (
        _base(name, key, ca, serial, now - dt.timedelta(minutes=5), now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(non_repudiation=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=True)
        # RFC 6960 4.2.2.2.1: clients need not check the responder's own status.
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    cert = sign_certificate(builder, custody, ca.key)
    return Authority(f"ocsp-{ca.name}", key, cert, ca.name)


def make_tsa(
    custody: KeyCustody,
    issuer: Authority,
    key: KeyReference,
    organization: str,
    urls: TrustUrls,
    serial: int,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> Authority:
    """The time-stamping unit's certificate (RFC 3161 section 2.3: EKU timeStamping, critical)."""
    name = _ca_name(f"{organization} Time-Stamping Authority", organization)
    builder = (
        _base(name, key, issuer, serial, now - dt.timedelta(minutes=5), now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(non_repudiation=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(POLICY_TSA, None)]), critical=False
        )
    )
    builder = _revocation_pointers(builder, urls, issuer.name)
    cert = sign_certificate(builder, custody, issuer.key)
    return Authority("tsa", key, cert, issuer.name)


def _qualified_policies(policy: x509.ObjectIdentifier) -> x509.CertificatePolicies:
    """The kind of person (natural or legal) and ETSI's NCP+ (EN 319 411-1), both under it."""
    return x509.CertificatePolicies(
        [x509.PolicyInformation(policy, None), x509.PolicyInformation(POLICY_ETSI_NCP_PLUS, None)]
    )


def _signing_key_usage(*, non_repudiation: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_end_entity(
    custody: KeyCustody,
    ca: Authority,
    details: SubjectDetails,
    subject_key: KeyReference,
    urls: TrustUrls,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A signing (or e-seal) certificate: keyUsage nonRepudiation + digitalSignature (critical).

    Raises ValueError when the subject details do not fit the profile (bad identifier check
    digit, missing names).
    """
    subject = subject_name(details)
    policy = (
        POLICY_NATURAL_PERSON if details.kind is OwnerKind.NATURAL_PERSON else POLICY_LEGAL_PERSON
    )
    builder = (
        _base(subject, subject_key, ca, serial, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(non_repudiation=True), critical=True)
        .add_extension(_qualified_policies(policy), critical=False)
    )
    builder = _revocation_pointers(builder, urls, ca.name)
    return sign_certificate(builder, custody, ca.key)
