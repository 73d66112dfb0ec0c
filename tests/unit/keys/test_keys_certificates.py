"""Issued certificates follow the ETSI profiles and are accepted by OpenSSL."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from egov_common.errors import InvalidArgument
from egov_keys.domain.algorithms import KeyAlgorithm
from egov_keys.domain.pki import OwnerKind
from egov_pki.identifiers import juristic_number, national_id
from egov_pki.profiles import parse_subject
from keys_world import (
    AGENCY_ID,
    AGENCY_NAMES,
    ANON,
    COMPANY_CLAIMS,
    COMPANY_ID,
    COMPANY_NAMES,
    PERSON_ID,
    PERSON_NAMES,
    VERIFIED_NAMES,
    VERIFIED_NAMES_TH,
)

openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def pem(ders: list[bytes]) -> bytes:
    return b"".join(x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM) for d in ders)


def issue(keys, identity, kind: OwnerKind):
    if kind is OwnerKind.NATURAL_PERSON:
        owner, names = national_id(PERSON_ID), PERSON_NAMES
        proof = identity.person(verified_names=VERIFIED_NAMES_TH)
    elif kind is OwnerKind.LEGAL_PERSON:
        owner, names = juristic_number(COMPANY_ID), COMPANY_NAMES
        proof = identity.representative(names=COMPANY_CLAIMS)
    else:
        owner, names, proof = juristic_number(AGENCY_ID), AGENCY_NAMES, identity.agency_client()
    return keys.credentials.create(
        ANON,
        idempotency_key=kind.value,
        owner=owner,
        kind=kind,
        algorithm=KeyAlgorithm.ECDSA_P256,
        names=names,
        proof_token=proof,
        backend=None,
    )


@openssl
@pytest.mark.parametrize("kind", list(OwnerKind))
def test_openssl_verifies_issued_chain(keys, identity, tmp_path: Path, kind):
    credential = issue(keys, identity, kind)
    chain = keys.credentials.chain(credential)
    (tmp_path / "leaf.pem").write_bytes(pem(chain[:1]))
    (tmp_path / "ca.pem").write_bytes(pem(chain[1:2]))
    (tmp_path / "root.pem").write_bytes(pem(chain[2:]))
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-purpose",
            "any",
            "-CAfile",
            tmp_path / "root.pem",
            "-untrusted",
            tmp_path / "ca.pem",
            tmp_path / "leaf.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")


def test_natural_person_certificate_follows_en_319_412_2(keys, identity):
    cert = x509.load_der_x509_certificate(
        issue(keys, identity, OwnerKind.NATURAL_PERSON).certificate_der
    )
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == f"PNOTH-{PERSON_ID}"
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.GIVEN_NAME)] == [
        "Somchai",
        "สมชาย",
    ]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.SURNAME)] == ["Jaidee", "ใจดี"]
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "TH"
    parsed = parse_subject(subject)
    assert (parsed.namespace, parsed.number, parsed.masked_number) == (
        "TH-PID",
        PERSON_ID,
        f"{PERSON_ID[0]}-{PERSON_ID[1:5]}-xxxxx-xx-{PERSON_ID[-1]}",
    )
    # Thai names are UTF8String in the DER (not T61 or BMP).
    assert "ใจดี".encode() in cert.public_bytes(Encoding.DER)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.content_commitment and usage.value.digital_signature
    assert not usage.value.key_cert_sign
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert {p.policy_identifier.dotted_string for p in policies} >= {"0.4.0.2042.1.2"}


def test_certificates_point_at_our_http_endpoints(keys, identity):
    cert = x509.load_der_x509_certificate(
        issue(keys, identity, OwnerKind.NATURAL_PERSON).certificate_der
    )
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_method: d.access_location.value for d in aia}
    assert urls[AuthorityInformationAccessOID.OCSP] == "http://127.0.0.1:8082/ocsp"
    assert urls[AuthorityInformationAccessOID.CA_ISSUERS] == (
        "http://127.0.0.1:8082/ca/natural-person.crt"
    )
    crl_dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crl_dp[0].full_name[0].value == "http://127.0.0.1:8082/crl/natural-person.crl"


def test_e_seal_certificate_names_the_agency(keys, identity):
    cert = x509.load_der_x509_certificate(
        issue(keys, identity, OwnerKind.ELECTRONIC_SEAL).certificate_der
    )
    parsed = parse_subject(cert.subject)
    assert (parsed.namespace, parsed.number) == ("TH-JUR", AGENCY_ID)
    assert "กรมการปกครอง" in [
        a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]


def test_tsa_and_ocsp_certificates_carry_their_critical_eku(keys):
    tsa = keys.trust.authority("tsa").certificate
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    responder = keys.trust.authority("ocsp-natural-person").certificate
    assert list(responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.OCSP_SIGNING
    ]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)


def test_bootstrap_is_idempotent(keys):
    before = {n: a.certificate.serial_number for n, a in keys.trust.authorities().items()}
    from egov_keys.domain.custody import CustodyBackend

    assert keys.trust.bootstrap(CustodyBackend.SOFTWARE) == []
    after = {n: a.certificate.serial_number for n, a in keys.trust.authorities().items()}
    assert before == after


@pytest.mark.parametrize(
    ("owner_value", "detail"),
    [("1101700230709", "IDENTIFIER_CHECKSUM_INVALID"), ("12345", "IDENTIFIER_MALFORMED")],
)
def test_identifier_with_bad_check_digit_is_refused(owner_value, detail):
    from egov.type.v1 import party_pb2
    from egov_keys.servicer import _owner

    with pytest.raises(InvalidArgument) as info:
        _owner(
            party_pb2.PartyIdentifier(
                namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value=owner_value
            )
        )
    assert info.value.reason == "OWNER_INVALID"
    assert info.value.metadata["detail"] == detail


def test_person_credential_for_a_company_number_is_refused(keys, identity):
    with pytest.raises(InvalidArgument) as info:
        keys.credentials.create(
            ANON,
            idempotency_key="x",
            owner=juristic_number(COMPANY_ID),
            kind=OwnerKind.NATURAL_PERSON,
            algorithm=KeyAlgorithm.ECDSA_P256,
            names=PERSON_NAMES,
            proof_token=identity.person(),
            backend=None,
        )
    assert info.value.reason == "OWNER_INVALID"


def _refused_names(
    keys, identity, kind: OwnerKind, person_name: str, organization: str
) -> pytest.ExceptionInfo[InvalidArgument]:
    """Have a credential of ``kind`` made with ``person_name`` as the person's given name, or
    ``organization`` as the company's English name; the InvalidArgument it must raise."""
    # identity verified these names: what refuses them is their form.
    if kind is OwnerKind.NATURAL_PERSON:
        owner = national_id(PERSON_ID)
        proof = identity.person(verified_names={**VERIFIED_NAMES, "given_name": person_name})
        names = dataclasses.replace(PERSON_NAMES, given_name_en=person_name)
    else:
        owner = juristic_number(COMPANY_ID)
        proof = identity.representative(
            names={**COMPANY_CLAIMS, "organization_name": organization}
        )
        names = dataclasses.replace(COMPANY_NAMES, organization_en=organization)
    with pytest.raises(InvalidArgument) as info:
        keys.credentials.create(
            ANON,
            idempotency_key="names",
            owner=owner,
            kind=kind,
            algorithm=KeyAlgorithm.ECDSA_P256,
            names=names,
            proof_token=proof,
            backend=None,
        )
    return info


@pytest.mark.parametrize("kind", [OwnerKind.NATURAL_PERSON, OwnerKind.LEGAL_PERSON])
@pytest.mark.parametrize("bad", ["\x00", "\n", "\u202e", "\u200b"])
def test_names_with_control_or_invisible_characters_are_not_certified(keys, identity, kind, bad):
    # A NUL ends the name for C-string readers; a bidi override or an invisible character
    # makes a subject read as someone else's. The CA never signs such a name.
    info = _refused_names(keys, identity, kind, f"Somchai{bad}Evil", f"Bank of Thailand{bad} ACME")
    assert info.value.reason == "NAMES_INVALID"
    assert not [r for r in keys.repository.audit_records() if r.action == "credential.create"]


@pytest.mark.parametrize("kind", [OwnerKind.NATURAL_PERSON, OwnerKind.LEGAL_PERSON])
def test_names_too_long_for_a_certificate_are_refused_before_a_key_is_made(
    keys, identity, kind, monkeypatch
):
    # X.520 bounds a name attribute at 64 characters. Found only once the certificate was
    # built, each such request left a generated key behind (a token object, in an HSM).
    generated = []
    for custody in keys.custodies.values():
        original = custody.generate
        monkeypatch.setattr(
            custody,
            "generate",
            lambda *args, _original=original, **kwargs: generated.append(args)
            or _original(*args, **kwargs),
        )
    info = _refused_names(keys, identity, kind, "J" * 65, "A" * 65)
    assert info.value.reason == "NAMES_INVALID"
    assert "64" in info.value.message
    assert generated == []


def test_start_up_refuses_a_wrong_kek(keys, identity, sqlite_url):
    from egov_common.errors import FailedPrecondition
    from keys_world import build_keys

    with pytest.raises(FailedPrecondition) as info:
        build_keys(sqlite_url, identity)  # a fresh random KEK: cannot open the stored CA keys
    assert info.value.reason == "CA_KEY_UNUSABLE"


def test_revocation_reissues_the_crl_and_both_are_audited(keys, identity):
    from egov_keys.domain.model import RevocationReason

    credential = issue(keys, identity, OwnerKind.NATURAL_PERSON)
    before = x509.load_der_x509_crl(keys.trust.crl("natural-person"))
    keys.credentials.revoke(
        ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, identity.person()
    )
    after = x509.load_der_x509_crl(keys.trust.crl("natural-person"))
    number = x509.CRLNumber
    assert after.extensions.get_extension_for_class(number).value.crl_number > (
        before.extensions.get_extension_for_class(number).value.crl_number
    )
    entry = after.get_revoked_certificate_by_serial_number(
        int(x509.load_der_x509_certificate(credential.certificate_der).serial_number)
    )
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    actions = [r.action for r in keys.repository.audit_records()]
    assert actions.count("crl.issue") >= 2 and "certificate.revoke" in actions
