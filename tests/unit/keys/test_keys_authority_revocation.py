"""An operator revokes an authority's certificate (``python -m egov_keys revoke-authority``):
its issuer's CRL and OCSP say so, the service stops using it, and ``bootstrap`` replaces a
revoked OCSP signer, TSA or issuing CA, which the running service then takes up."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from egov_common.errors import FailedPrecondition, NotFound, Unavailable
from egov_keys.__main__ import main
from egov_keys.domain import pki
from egov_keys.domain.model import RevocationReason
from egov_keys.http import build_http_app
from egov_keys.runtime import KeysRuntime, bootstrap
from keys_world import another_process, build_keys, sha256
from test_keys_http_and_listing import _Client
from test_keys_sole_control import authorize, create_person, renew, sign
from test_keys_tsa_and_ocsp import status_of, timestamp_request

CA_COMPROMISE = RevocationReason.CA_COMPROMISE


@pytest.fixture
def keys(sqlite_url, identity, clock):
    """The keys runtime, reading revocations on every use (not every few seconds)."""
    runtime = build_keys(sqlite_url, identity, clock, authority_recheck_seconds=0)
    try:
        yield runtime
    finally:
        runtime.close()


def _stamp(keys: KeysRuntime) -> tuple[str, set[str] | None]:
    return status_of(keys.trust.timestamp(timestamp_request(hashlib.sha256(b"doc").digest())).der)


def _ocsp(keys: KeysRuntime, cert: x509.Certificate, issuer: x509.Certificate):
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return ocsp.load_der_ocsp_response(keys.trust.ocsp(request.public_bytes(Encoding.DER)).der)


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_a_revoked_tsa_is_listed_answered_revoked_and_stamps_no_more(keys):
    tsa, root = keys.trust.authority("tsa").certificate, keys.trust.authority("root").certificate
    assert _stamp(keys)[0] == "granted"

    assert keys.trust.revoke_authority("tsa", CA_COMPROMISE, "operator")

    crl = x509.load_der_x509_crl(keys.trust.crl("root"))
    entry = crl.get_revoked_certificate_by_serial_number(tsa.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.ca_compromise
    )
    answer = _ocsp(keys, tsa, root)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    # RFC 3161: a token signed with a revoked key proves nothing; the TSA says it cannot serve.
    assert _stamp(keys) == ("rejection", {"system_failure"})
    [record] = [r for r in keys.repository.audit_records() if r.action == "ca.revoke"]
    assert '"authority": "tsa"' in record.details_json
    assert not keys.trust.revoke_authority("tsa", CA_COMPROMISE, "operator")  # once only


def test_bootstrap_replaces_a_revoked_tsa_and_the_running_service_takes_it_up(keys):
    old = keys.trust.authority("tsa").certificate
    keys.trust.revoke_authority("tsa", CA_COMPROMISE, "operator")
    assert _stamp(keys)[0] == "rejection"

    assert bootstrap(keys.settings) == ["tsa"]

    granted = keys.trust.timestamp(timestamp_request(hashlib.sha256(b"doc").digest()))
    assert granted.granted
    signer = tsp.TimeStampResp.load(granted.der)["time_stamp_token"]["content"]["certificates"][0]
    new = keys.trust.authority("tsa").certificate
    assert new.serial_number != old.serial_number
    assert signer.chosen.serial_number == new.serial_number
    # The revoked one stays revoked, on the CRL and in OCSP, under its retired name.
    root = keys.trust.authority("root").certificate
    assert _ocsp(keys, old, root).certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert _ocsp(keys, new, root).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert f"tsa@{old.serial_number:x}" in keys.repository.authorities()
    assert bootstrap(keys.settings) == []  # nothing more to replace


def test_a_revoked_ocsp_signer_answers_try_later_until_it_is_replaced(keys, identity):
    credential = create_person(keys, identity)
    cert = x509.load_der_x509_certificate(credential.certificate_der)
    issuer = keys.trust.authority("natural-person").certificate
    keys.trust.revoke_authority("ocsp-natural-person", CA_COMPROMISE, "operator")

    assert _ocsp(keys, cert, issuer).response_status is ocsp.OCSPResponseStatus.TRY_LATER
    # The other scopes' signers answer as before.
    root = keys.trust.authority("root").certificate
    assert _ocsp(keys, issuer, root).certificate_status is ocsp.OCSPCertStatus.GOOD

    assert bootstrap(keys.settings) == ["ocsp-natural-person"]
    answer = _ocsp(keys, cert, issuer)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.certificates[0] == keys.trust.authority("ocsp-natural-person").certificate


def test_a_revoked_issuing_ca_issues_and_signs_no_more(keys, identity):
    credential = create_person(keys, identity)
    cert = x509.load_der_x509_certificate(credential.certificate_der)
    issuer = keys.trust.authority("natural-person").certificate
    keys.trust.revoke_authority("natural-person", CA_COMPROMISE, "operator")

    with pytest.raises(FailedPrecondition) as info:
        create_person(keys, identity, key="after-revocation")
    assert info.value.reason == "ISSUER_REVOKED"
    with pytest.raises(FailedPrecondition) as info:
        authorize(keys.credentials, identity, credential, [sha256(b"a")])
    assert info.value.reason == "ISSUER_REVOKED"
    # Listed on the root's CRL; its OCSP signer, certified by it, answers for it no more.
    crl = x509.load_der_x509_crl(keys.trust.crl("root"))
    assert crl.get_revoked_certificate_by_serial_number(issuer.serial_number) is not None
    assert _ocsp(keys, cert, issuer).response_status is ocsp.OCSPResponseStatus.TRY_LATER
    assert {"natural-person", "ocsp-natural-person"} <= keys.trust.revoked_authorities()


def test_bootstrap_replaces_a_revoked_issuing_ca_and_its_credentials_are_renewed_under_the_new(
    keys, identity, sqlite_url, clock
):
    # A second process, running since before the compromise, must take the new CA up as well.
    other = another_process(keys, identity, clock, authority_recheck_seconds=0)
    try:
        credential = create_person(keys, identity)
        old_ca = keys.trust.authority("natural-person").certificate
        old_crl = x509.load_der_x509_crl(other.trust.crl("natural-person"))  # cached there
        keys.trust.revoke_authority("natural-person", CA_COMPROMISE, "operator")

        assert bootstrap(keys.settings) == ["natural-person", "ocsp-natural-person"]

        for runtime in (keys, other):
            new_ca = runtime.trust.authority("natural-person").certificate
            assert new_ca.serial_number != old_ca.serial_number
            assert new_ca.public_key() != old_ca.public_key()
            # the old CA's credentials stay refused, and keep their own chain
            with pytest.raises(FailedPrecondition) as info:
                authorize(runtime.credentials, identity, credential, [sha256(b"a")])
            assert info.value.reason == "ISSUER_REVOKED"
            chain = runtime.credentials.chain(runtime.credentials.get(credential.credential_id))
            assert x509.load_der_x509_certificate(chain[1]) == old_ca
            # the CRL under the CA's name is the new CA's, not the one cached before
            crl = x509.load_der_x509_crl(runtime.trust.crl("natural-person"))
            assert crl.issuer == new_ca.subject
            assert crl.is_signature_valid(new_ca.public_key())
            assert not crl.is_signature_valid(old_ca.public_key())
            assert old_crl.is_signature_valid(old_ca.public_key())
            # numbered on from the old CA's: a validator caching by issuer name takes it as newer
            assert _crl_number(crl) > _crl_number(old_crl)

        # the owner renews: a new key, certified by the new CA, that signs and is GOOD in OCSP
        new, old = renew(keys.credentials, credential, "renew-after-compromise", identity.person())
        assert old.status.value == "renewed"
        new_cert = x509.load_der_x509_certificate(new.certificate_der)
        new_ca = keys.trust.authority("natural-person").certificate
        assert new_cert.issuer == new_ca.subject
        new_cert.verify_directly_issued_by(new_ca)
        assert x509.load_der_x509_certificate(keys.credentials.chain(new)[1]) == new_ca
        answer = _ocsp(keys, new_cert, new_ca)
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert answer.certificates[0] == keys.trust.authority("ocsp-natural-person").certificate
        sad = authorize(keys.credentials, identity, new, [sha256(b"a")])
        assert sad
        # the root's CRL still lists the old CA; nothing is left to replace
        root_crl = x509.load_der_x509_crl(keys.trust.crl("root"))
        assert root_crl.get_revoked_certificate_by_serial_number(old_ca.serial_number)
        assert bootstrap(keys.settings) == []
        retired = [r for r in keys.repository.audit_records() if r.action == "ca.retire"]
        assert {r.details_json.count("natural-person") > 0 for r in retired} == {True}
        assert len(retired) == 2
    finally:
        other.close()


@pytest.fixture
def serving(keys, identity, sqlite_url, clock):
    """Another process on the same database, serving since before the compromise: it reads
    revocations every minute, and last read them just now."""
    runtime = another_process(keys, identity, clock, authority_recheck_seconds=60)
    try:
        runtime.trust.authority("root")
        yield runtime
    finally:
        runtime.close()


def _replace_natural_person_ca(keys: KeysRuntime) -> tuple[x509.Certificate, x509.Certificate]:
    """Revoke the natural-person CA and bootstrap its replacement: (old, new) certificates."""
    old = keys.trust.authority("natural-person").certificate
    keys.trust.revoke_authority("natural-person", CA_COMPROMISE, "operator")
    assert bootstrap(keys.settings) == ["natural-person", "ocsp-natural-person"]
    return old, keys.trust.authority("natural-person").certificate


def test_no_process_serves_a_crl_signed_by_the_replaced_ca_key_as_the_new_cas(
    keys, serving, identity, sqlite_url, clock
):
    # One more process that had fetched the CRL before, and holds it in its cache.
    cached = another_process(keys, identity, clock, authority_recheck_seconds=60)
    try:
        cached.trust.crl("natural-person")
        old, new = _replace_natural_person_ca(keys)

        # ``serving`` is asked first: a CRL it made with the old key would be stored, and then
        # served by every process, under the new CA's name until half its life had passed.
        for runtime in (serving, cached, keys):
            crl = x509.load_der_x509_crl(runtime.trust.crl("natural-person"))
            assert crl.is_signature_valid(new.public_key())
            assert not crl.is_signature_valid(old.public_key())
        latest = keys.repository.latest_crl("natural-person")
        assert latest is not None
        assert x509.load_der_x509_crl(latest.der).is_signature_valid(new.public_key())
    finally:
        cached.close()


def test_a_process_that_still_holds_the_replaced_ca_issues_under_the_new_one(
    keys, serving, identity
):
    _, new = _replace_natural_person_ca(keys)

    credential = create_person(serving, identity, key="issued-meanwhile")

    # Certified by the new CA, not by the compromised key under the new CA's name.
    cert = x509.load_der_x509_certificate(credential.certificate_der)
    cert.verify_directly_issued_by(new)
    assert credential.issuer == "natural-person"
    chain = keys.credentials.chain(keys.credentials.get(credential.credential_id))
    assert x509.load_der_x509_certificate(chain[1]) == new
    sad = authorize(keys.credentials, identity, credential, [sha256(b"a")])
    assert sign(keys.credentials, credential, sad, [sha256(b"a")])


def test_the_old_ocsp_signer_answers_for_no_new_ca_when_bootstrap_stopped_halfway(
    keys, identity, monkeypatch, capsys
):
    old_signer = keys.trust.authority("ocsp-natural-person").certificate
    keys.trust.revoke_authority("natural-person", CA_COMPROMISE, "operator")
    make_ocsp_signer = pki.make_ocsp_signer

    def token_gone(custody, ca, *args, **kwargs):
        if ca.name == "natural-person":
            raise RuntimeError("the HSM went away")
        return make_ocsp_signer(custody, ca, *args, **kwargs)

    monkeypatch.setenv("EGOV_KEYS_DATABASE_URL", keys.settings.database_url)
    monkeypatch.setenv("EGOV_KEYS_SOFTWARE_KEK", keys.settings.software_kek.get_secret_value())
    with monkeypatch.context() as patched:  # the new CA is made, its OCSP signer is not
        patched.setattr(pki, "make_ocsp_signer", token_gone)
        assert main(["bootstrap"]) == 3  # the operator's command: says so, and what to do
    assert "running it again makes the rest" in capsys.readouterr().err
    credential = create_person(keys, identity)
    cert = x509.load_der_x509_certificate(credential.certificate_der)
    new_ca = keys.trust.authority("natural-person").certificate

    # The old signer is certified by the retired CA: its answers would prove nothing.
    assert "ocsp-natural-person" in keys.trust.revoked_authorities()
    assert _ocsp(keys, cert, new_ca).response_status is ocsp.OCSPResponseStatus.TRY_LATER

    assert bootstrap(keys.settings) == ["ocsp-natural-person"]
    answer = _ocsp(keys, cert, new_ca)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.certificates[0] != old_signer
    assert answer.certificates[0] == keys.trust.authority("ocsp-natural-person").certificate


def test_the_crl_of_a_ca_being_replaced_is_unavailable_not_a_server_error(keys, monkeypatch):
    keys.trust.revoke_authority("natural-person", CA_COMPROMISE, "operator")
    with monkeypatch.context() as patched:  # the old CA is retired, the new one not yet made
        patched.setattr(pki, "make_issuing_ca", _raise_token_gone)
        with pytest.raises(RuntimeError):
            bootstrap(keys.settings)

    with pytest.raises(Unavailable) as info:
        keys.trust.crl("natural-person")
    assert info.value.reason == "CA_BEING_REPLACED"
    client = _Client(build_http_app(keys.trust))
    assert client.get("/crl/natural-person.crl").status_code == 503
    assert client.get("/crl/root.crl").status_code == 200

    assert bootstrap(keys.settings) == ["natural-person", "ocsp-natural-person"]
    crl = client.get("/crl/natural-person.crl")
    assert crl.status_code == 200
    new = keys.trust.authority("natural-person").certificate
    assert x509.load_der_x509_crl(crl.content).is_signature_valid(new.public_key())


def _raise_token_gone(*args, **kwargs):
    raise RuntimeError("the HSM went away")


def test_the_root_and_unknown_authorities_cannot_be_revoked(keys):
    with pytest.raises(FailedPrecondition) as refused:
        keys.trust.revoke_authority("root", CA_COMPROMISE, "operator")
    assert refused.value.reason == "ROOT_NOT_REVOCABLE"
    with pytest.raises(NotFound) as unknown:
        keys.trust.revoke_authority("no-such-ca", CA_COMPROMISE, "operator")
    assert unknown.value.reason == "AUTHORITY_NOT_FOUND"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_revoke_authority_command_and_openssl_reading_the_crl(
    keys, monkeypatch, sqlite_url, capsys, tmp_path
):
    monkeypatch.setenv("EGOV_KEYS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("EGOV_KEYS_SOFTWARE_KEK", keys.settings.software_kek.get_secret_value())
    serial = keys.trust.authority("tsa").certificate.serial_number

    assert main(["revoke-authority", "tsa", "--reason", "key_compromise"]) == 0
    assert "tsa revoked (key_compromise)" in capsys.readouterr().out
    assert main(["revoke-authority", "tsa", "--reason", "key_compromise"]) == 0
    assert "revoked already" in capsys.readouterr().out
    assert main(["revoke-authority", "root", "--reason", "key_compromise"]) == 3
    assert main(["revoke-authority", "tsa", "--reason", "because"]) == 2

    crl = tmp_path / "root.crl"
    crl.write_bytes(keys.trust.crl("root"))
    text = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(crl), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {int(found, 16) for found in re.findall(r"Serial Number: ([0-9A-F]+)", text)}
    assert serial in listed
    assert "Key Compromise" in text


def test_a_replacement_whose_key_backend_this_process_lacks_is_named_once_in_the_log(
    keys, sqlite_url, caplog
):
    import logging

    import sqlalchemy as sa

    keys.trust.revoke_authority("tsa", CA_COMPROMISE, "operator")
    assert bootstrap(keys.settings) == ["tsa"]
    # as if bootstrap had made the new TSA key in an HSM this process is not configured with
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE authorities SET backend = 'pkcs11' WHERE name = 'tsa'"))
    engine.dispose()
    with caplog.at_level(logging.ERROR, logger="egov.keys.trust"):
        for _ in range(3):
            assert "tsa" in keys.trust.revoked_authorities()
    assert _stamp(keys)[0] == "rejection"  # still refused here, not signed with either key
    named = [r for r in caplog.records if "replacement of revoked tsa" in r.getMessage()]
    assert len(named) == 1 and "pkcs11" in named[0].getMessage()
