"""Sole control: no valid SAD, no signature; every refusal has its own reason."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from cryptography import x509
from egov_common.auth import Caller, CallerKind
from egov_common.clock import FixedClock
from egov_common.deadlines import deadline_scope
from egov_common.errors import EgovError
from egov_keys.credentials import CredentialService
from egov_keys.domain.algorithms import (
    HashAlgorithm,
    KeyAlgorithm,
    SignatureScheme,
    verify_digest_signature,
)
from egov_keys.domain.model import Credential
from egov_keys.domain.pki import OwnerKind
from egov_keys.runtime import KeysRuntime
from egov_pki.identifiers import juristic_number, national_id
from keys_world import (
    AGENCY_ID,
    AGENCY_NAMES,
    ANON,
    COMPANY_CLAIMS,
    COMPANY_ID,
    COMPANY_NAMES,
    OTHER_PERSON_ID,
    PERSON_ID,
    PERSON_NAMES,
    SIGNING,
    LocalIdentity,
    sha256,
)

SHA256 = HashAlgorithm.SHA256


def create_person(
    keys: KeysRuntime,
    identity: LocalIdentity,
    key: str = "idem-1",
    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256,
) -> Credential:
    return keys.credentials.create(
        ANON,
        idempotency_key=key,
        owner=national_id(PERSON_ID),
        kind=OwnerKind.NATURAL_PERSON,
        algorithm=algorithm,
        names=PERSON_NAMES,
        proof_token=identity.person(),
        backend=None,
    )


def authorize(
    svc: CredentialService,
    identity: LocalIdentity,
    credential: Credential,
    hashes: list[bytes],
    token: str | None = None,
) -> str:
    return svc.authorize(
        ANON,
        credential_id=credential.credential_id,
        hashes=hashes,
        hash_algorithm=SHA256,
        num_signatures=len(hashes),
        proof_token=token or identity.person(),
        description="test",
    ).sad


def renew(
    svc: CredentialService, credential: Credential, key: str, token: str
) -> tuple[Credential, Credential]:
    """The owner (``token``) renews ``credential`` with the same algorithm: (new, previous)."""
    return svc.renew(
        ANON,
        idempotency_key=key,
        credential_id=credential.credential_id,
        algorithm=None,
        proof_token=token,
    )


def sign(
    svc: CredentialService,
    credential: Credential,
    sad: str,
    hashes: list[bytes],
    caller: Caller = SIGNING,
) -> list[bytes]:
    return svc.sign_hash(
        caller,
        credential_id=credential.credential_id,
        sad=sad,
        hashes=hashes,
        hash_algorithm=SHA256,
        scheme=None,
    )


def reason_of(call: object) -> str:
    with pytest.raises(EgovError) as info:
        call()  # type: ignore[operator]
    return f"{info.value.code.value}/{info.value.reason}"


def audit_outcomes(keys: KeysRuntime, action: str) -> list[str]:
    return [r.outcome for r in keys.repository.audit_records() if r.action == action]


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_authorized_hashes_are_signed_with_the_credential_key(keys, identity, algorithm):
    credential = create_person(keys, identity, algorithm=algorithm)
    hashes = [sha256(b"doc-1"), sha256(b"doc-2")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    signatures = sign(keys.credentials, credential, sad, list(reversed(hashes)))
    public = x509.load_der_x509_certificate(credential.certificate_der).public_key()
    for digest, signature in zip(reversed(hashes), signatures, strict=True):
        verify_digest_signature(public, signature, digest, SHA256, algorithm.default_scheme)
    assert audit_outcomes(keys, "signature.batch") == ["success"]


def test_replayed_sad_is_refused(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    sign(keys.credentials, credential, sad, hashes)
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes)) == (
        "UNAUTHENTICATED/SAD_ALREADY_USED"
    )


def test_expired_sad_is_refused(keys, identity, clock: FixedClock):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    clock.advance(dt.timedelta(minutes=6))
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes)) == (
        "UNAUTHENTICATED/SAD_EXPIRED"
    )


def test_sad_for_other_hashes_is_refused(keys, identity):
    credential = create_person(keys, identity)
    sad = authorize(keys.credentials, identity, credential, [sha256(b"a"), sha256(b"b")])
    assert reason_of(lambda: sign(keys.credentials, credential, sad, [sha256(b"a")])) == (
        "UNAUTHENTICATED/SAD_OTHER_HASHES"
    )
    assert (
        reason_of(lambda: sign(keys.credentials, credential, sad, [sha256(b"a"), sha256(b"c")]))
        == "UNAUTHENTICATED/SAD_OTHER_HASHES"
    )
    # A refused attempt does not burn the SAD: the owner's real request still goes through.
    sign(keys.credentials, credential, sad, [sha256(b"b"), sha256(b"a")])


def test_sad_for_another_credential_is_refused(keys, identity):
    first = create_person(keys, identity, key="one")
    second = create_person(keys, identity, key="two")
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, first, hashes)
    assert reason_of(lambda: sign(keys.credentials, second, sad, hashes)) == (
        "UNAUTHENTICATED/SAD_OTHER_CREDENTIAL"
    )


def test_no_sad_no_signature(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    assert reason_of(lambda: sign(keys.credentials, credential, "", hashes)) == (
        "UNAUTHENTICATED/SAD_MISSING"
    )
    assert reason_of(lambda: sign(keys.credentials, credential, "sad1.made-up", hashes)) == (
        "UNAUTHENTICATED/SAD_INVALID"
    )
    assert "success" not in audit_outcomes(keys, "signature.batch")


def test_only_the_signing_service_may_sign(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    portal = Caller(CallerKind.SERVICE, "registry", peer_service="registry")
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes, portal)) == (
        "PERMISSION_DENIED/CALLER_NOT_ALLOWED"
    )
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes, ANON)) == (
        "PERMISSION_DENIED/CALLER_NOT_ALLOWED"
    )
    sign(keys.credentials, credential, sad, hashes)


def test_concurrent_spends_of_one_sad_sign_once(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            sign(keys.credentials, credential, sad, hashes)
            results.append("signed")
        except EgovError as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("signed") == 1
    assert set(results) - {"signed"} == {"SAD_ALREADY_USED"}
    assert audit_outcomes(keys, "signature.batch").count("success") == 1


def test_authorize_needs_the_owners_fresh_aal2_login(keys, identity, clock: FixedClock):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]

    def with_token(token: str) -> object:
        return lambda: authorize(keys.credentials, identity, credential, hashes, token)

    assert reason_of(with_token(identity.person(acr="urn:egov:aal:1"))) == (
        "PERMISSION_DENIED/AAL_TOO_LOW"
    )
    old_login = clock.now().timestamp() - 3600
    assert reason_of(with_token(identity.person(auth_time=old_login))) == (
        "PERMISSION_DENIED/AUTH_TIME_TOO_OLD"
    )
    assert reason_of(with_token(identity.person(OTHER_PERSON_ID))) == (
        "PERMISSION_DENIED/OWNER_MISMATCH"
    )
    assert reason_of(with_token(identity.token(exp=clock.now().timestamp() - 120))) == (
        "UNAUTHENTICATED/TOKEN_EXPIRED"
    )
    forged = LocalIdentity(kid=identity.kid).person()
    assert reason_of(with_token(forged)) == "UNAUTHENTICATED/TOKEN_SIGNATURE_INVALID"
    assert (
        reason_of(
            lambda: keys.credentials.authorize(
                ANON,
                credential_id=credential.credential_id,
                hashes=hashes,
                hash_algorithm=SHA256,
                num_signatures=1,
                proof_token="",
                description="",
            )
        )
        == "UNAUTHENTICATED/PROOF_MISSING"
    )
    # Every failed attempt is in the credential's audit trail; no SAD came of any of them.
    assert audit_outcomes(keys, "sad.authorize") == [
        "failure:AAL_TOO_LOW",
        "failure:AUTH_TIME_TOO_OLD",
        "failure:OWNER_MISMATCH",
        "failure:TOKEN_EXPIRED",
        "failure:TOKEN_SIGNATURE_INVALID",
        "failure:PROOF_MISSING",
    ]
    refused = [r for r in keys.repository.audit_records() if r.action == "sad.authorize"]
    assert {r.credential_id for r in refused} == {credential.credential_id}
    assert all(PERSON_ID not in r.actor for r in refused)  # no national id in the trail


def test_attempts_to_revoke_or_renew_another_persons_credential_are_audited(keys, identity):
    from egov_keys.domain.model import RevocationReason

    credential = create_person(keys, identity)
    stranger = identity.person(OTHER_PERSON_ID)
    assert reason_of(
        lambda: keys.credentials.revoke(
            ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, stranger
        )
    ) == "PERMISSION_DENIED/OWNER_MISMATCH"
    assert reason_of(
        lambda: renew(keys.credentials, credential, "renew-1", stranger)
    ) == "PERMISSION_DENIED/OWNER_MISMATCH"
    assert audit_outcomes(keys, "certificate.revoke") == ["failure:OWNER_MISMATCH"]
    assert audit_outcomes(keys, "credential.renew") == ["failure:OWNER_MISMATCH"]
    assert keys.credentials.get(credential.credential_id).status.value == "active"
    # an unknown credential names nothing to attach a failure to: NOT_FOUND, nothing written
    before = len(keys.repository.audit_records())
    assert reason_of(
        lambda: keys.credentials.revoke(
            ANON, "cred-unknown", RevocationReason.KEY_COMPROMISE, stranger
        )
    ).startswith("NOT_FOUND/")
    assert len(keys.repository.audit_records()) == before


def test_natural_person_credential_needs_ial_2_3(keys, identity):
    def create(token: str) -> object:
        return lambda: keys.credentials.create(
            ANON,
            idempotency_key="k",
            owner=national_id(PERSON_ID),
            kind=OwnerKind.NATURAL_PERSON,
            algorithm=KeyAlgorithm.ECDSA_P256,
            names=PERSON_NAMES,
            proof_token=token,
            backend=None,
        )

    assert reason_of(create(identity.person(ial="2.2"))) == "PERMISSION_DENIED/IAL_TOO_LOW"
    assert reason_of(create(identity.person(OTHER_PERSON_ID))) == (
        "PERMISSION_DENIED/OWNER_MISMATCH"
    )
    assert keys.repository.credential_by_idempotency_key("k") is None


def test_representative_with_sign_power_signs_for_the_company(keys, identity):
    credential = keys.credentials.create(
        ANON,
        idempotency_key="acme",
        owner=juristic_number(COMPANY_ID),
        kind=OwnerKind.LEGAL_PERSON,
        algorithm=KeyAlgorithm.ECDSA_P256,
        names=COMPANY_NAMES,
        proof_token=identity.representative(names=COMPANY_CLAIMS),
        backend=None,
    )
    subject = x509.load_der_x509_certificate(credential.certificate_der).subject
    assert subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_IDENTIFIER)[0].value == (
        f"NTRTH-{COMPANY_ID}"
    )
    hashes = [sha256(b"invoice")]
    viewer = identity.representative(powers=("view",))
    assert (
        reason_of(lambda: authorize(keys.credentials, identity, credential, hashes, viewer))
        == "PERMISSION_DENIED/NOT_REPRESENTATIVE"
    )
    own_token = identity.person()
    assert (
        reason_of(lambda: authorize(keys.credentials, identity, credential, hashes, own_token))
        == "PERMISSION_DENIED/NOT_REPRESENTATIVE"
    )
    sad = authorize(keys.credentials, identity, credential, hashes, identity.representative())
    assert len(sign(keys.credentials, credential, sad, hashes)) == 1


def test_agency_seal_is_authorised_by_its_service_client(keys, identity):
    credential = keys.credentials.create(
        ANON,
        idempotency_key="seal",
        owner=juristic_number(AGENCY_ID),
        kind=OwnerKind.ELECTRONIC_SEAL,
        algorithm=KeyAlgorithm.ECDSA_P256,
        names=AGENCY_NAMES,
        proof_token=identity.agency_client(),
        backend=None,
    )
    hashes = [sha256(b"certificate.pdf")]
    no_scope = identity.agency_client(scope="openid")
    assert (
        reason_of(lambda: authorize(keys.credentials, identity, credential, hashes, no_scope))
        == "PERMISSION_DENIED/SCOPE_MISSING"
    )
    other_agency = identity.agency_client(agency=COMPANY_ID)
    assert (
        reason_of(lambda: authorize(keys.credentials, identity, credential, hashes, other_agency))
        == "PERMISSION_DENIED/OWNER_MISMATCH"
    )
    sad = authorize(keys.credentials, identity, credential, hashes, identity.agency_client())
    assert len(sign(keys.credentials, credential, sad, hashes)) == 1
    # The agency client may also call keys itself, as the gRPC caller.
    direct = Caller(
        CallerKind.CLIENT, "agency-client", frozenset({"keys:seal"}), agency=f"TH-JUR:{AGENCY_ID}"
    )
    issued = keys.credentials.authorize(
        direct,
        credential_id=credential.credential_id,
        hashes=hashes,
        hash_algorithm=SHA256,
        num_signatures=1,
        proof_token="",
        description="",
    )
    assert issued.sad


def test_revoked_credential_cannot_be_authorised_or_sign(keys, identity):
    from egov_keys.domain.model import RevocationReason

    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    keys.credentials.revoke(
        ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, identity.person()
    )
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes)) == (
        "FAILED_PRECONDITION/CREDENTIAL_REVOKED"
    )
    assert reason_of(lambda: authorize(keys.credentials, identity, credential, hashes)) == (
        "FAILED_PRECONDITION/CREDENTIAL_REVOKED"
    )
    assert audit_outcomes(keys, "sad.authorize")[-1] == "failure:CREDENTIAL_REVOKED"
    assert audit_outcomes(keys, "signature.batch")[-1] == "failure:CREDENTIAL_REVOKED"


def test_renewed_credential_keeps_its_certificate_but_cannot_sign(keys, identity):
    old = create_person(keys, identity)
    new, previous = renew(keys.credentials, old, "renew-1", identity.person())
    assert previous.status.value == "renewed" and previous.renewed_by == new.credential_id
    assert new.renewed_from == old.credential_id
    assert new.certificate_serial != old.certificate_serial
    assert x509.load_der_x509_certificate(new.certificate_der).subject == (
        x509.load_der_x509_certificate(old.certificate_der).subject
    )
    assert reason_of(lambda: authorize(keys.credentials, identity, old, [sha256(b"a")])) == (
        "FAILED_PRECONDITION/CREDENTIAL_RENEWED"
    )
    again, _ = renew(keys.credentials, old, "renew-1", identity.person())
    assert again.credential_id == new.credential_id


def test_create_is_idempotent_by_key(keys, identity):
    first = create_person(keys, identity, key="same")
    second = create_person(keys, identity, key="same")
    assert first.credential_id == second.credential_id
    assert (
        reason_of(
            lambda: create_person(keys, identity, key="same", algorithm=KeyAlgorithm.ECDSA_P384)
        )
        == "FAILED_PRECONDITION/IDEMPOTENCY_KEY_REUSED"
    )


def test_rsa_pss_signatures_verify(keys, identity):
    credential = create_person(keys, identity, algorithm=KeyAlgorithm.RSA_3072)
    hashes = [sha256(b"pss")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    [signature] = keys.credentials.sign_hash(
        SIGNING,
        credential_id=credential.credential_id,
        sad=sad,
        hashes=hashes,
        hash_algorithm=SHA256,
        scheme=SignatureScheme.RSA_PSS,
    )
    public = x509.load_der_x509_certificate(credential.certificate_der).public_key()
    verify_digest_signature(public, signature, hashes[0], SHA256, SignatureScheme.RSA_PSS)


def test_owner_may_sign_with_a_token_that_omits_the_identifier(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    same_login = identity.token(sub=credential.created_by)  # no identifier claim
    sad = authorize(keys.credentials, identity, credential, hashes, same_login)
    assert sign(keys.credentials, credential, sad, hashes)
    stranger = identity.token(sub="someone-else")
    assert reason_of(
        lambda: authorize(keys.credentials, identity, credential, hashes, stranger)
    ) == ("PERMISSION_DENIED/OWNER_MISMATCH")


def test_a_client_token_named_like_the_signing_service_is_not_the_signing_service(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    impostor = Caller(CallerKind.CLIENT, "signing", frozenset({"openid"}))
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes, impostor)) == (
        "PERMISSION_DENIED/CALLER_NOT_ALLOWED"
    )


def test_a_sign_hash_whose_caller_gave_up_does_not_burn_the_sad(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    with deadline_scope(0):  # the caller's deadline has passed when keys comes to spend
        assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes)) == (
            "DEADLINE_EXCEEDED/DEADLINE_EXCEEDED"
        )
    # Nobody received a signature, so the owner's authorisation is still there to use.
    assert len(sign(keys.credentials, credential, sad, hashes)) == 1
    assert audit_outcomes(keys, "signature.batch") == ["success"]


def test_revocation_racing_a_sign_hash_wins(keys, identity, monkeypatch):
    from egov_keys.domain.model import RevocationReason

    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    checks = {"n": 0}
    real_check = CredentialService._require_usable

    def stale_first_check(self, current):
        # The first check sees the credential still active (read before the revocation) ...
        checks["n"] += 1
        if checks["n"] > 1:
            real_check(self, current)

    monkeypatch.setattr(CredentialService, "_require_usable", stale_first_check)
    keys.credentials.revoke(
        ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, identity.person()
    )
    # ... but the spend is conditional on the credential being active in the database.
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes)) == (
        "FAILED_PRECONDITION/CREDENTIAL_REVOKED"
    )
    assert "success" not in audit_outcomes(keys, "signature.batch")


def test_a_sign_hash_from_a_caller_not_allowed_is_audited(keys, identity):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    intruder = Caller(CallerKind.SERVICE, "registry", peer_service="registry")
    assert reason_of(lambda: sign(keys.credentials, credential, sad, hashes, intruder)) == (
        "PERMISSION_DENIED/CALLER_NOT_ALLOWED"
    )
    [refused] = [r for r in keys.repository.audit_records() if r.action == "signature.batch"]
    assert (refused.outcome, refused.actor, refused.credential_id) == (
        "failure:CALLER_NOT_ALLOWED",
        "service:registry",
        credential.credential_id,
    )
    # The SAD is not spent: the signing service still signs with it.
    assert len(sign(keys.credentials, credential, sad, hashes)) == 1
    # An attempt on no credential has nothing to attach to: refused alike, nothing written.
    before = len(keys.repository.audit_records())
    assert reason_of(
        lambda: keys.credentials.sign_hash(
            intruder,
            credential_id="cred_unknown",
            sad=sad,
            hashes=hashes,
            hash_algorithm=SHA256,
            scheme=None,
        )
    ) == "PERMISSION_DENIED/CALLER_NOT_ALLOWED"
    assert len(keys.repository.audit_records()) == before


def test_revoking_or_listing_needs_a_recent_login(keys, identity, clock: FixedClock):
    from egov_keys.domain.model import RevocationReason

    credential = create_person(keys, identity)
    day_old = identity.person(auth_time=clock.now().timestamp() - 86400)
    assert reason_of(
        lambda: keys.credentials.revoke(
            ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, day_old
        )
    ) == "PERMISSION_DENIED/AUTH_TIME_TOO_OLD"
    assert reason_of(
        lambda: keys.credentials.list_credentials(
            ANON,
            owner=national_id(PERSON_ID),
            proof_token=day_old,
            status=None,
            page_size=0,
            page_token="",
        )
    ) == "PERMISSION_DENIED/AUTH_TIME_TOO_OLD"
    no_auth_time = identity.person(auth_time=None)
    assert reason_of(
        lambda: keys.credentials.revoke(
            ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, no_auth_time
        )
    ) == "PERMISSION_DENIED/AUTH_TIME_TOO_OLD"
    assert audit_outcomes(keys, "certificate.revoke") == ["failure:AUTH_TIME_TOO_OLD"] * 2
    assert keys.credentials.get(credential.credential_id).status.value == "active"
    # A login within MAX_MANAGE_AUTH_AGE_SECONDS (600 s by default) revokes.
    recent = identity.person(auth_time=clock.now().timestamp() - 300)
    keys.credentials.revoke(
        ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, recent
    )
    assert keys.credentials.get(credential.credential_id).status.value == "revoked"


def test_the_manage_login_age_is_its_own_setting(sqlite_url, identity, clock: FixedClock):
    from keys_world import build_keys

    keys = build_keys(sqlite_url, identity, clock, max_manage_auth_age_seconds=2 * 86400)
    try:
        create_person(keys, identity)
        day_old = identity.person(auth_time=clock.now().timestamp() - 86400)
        page, _ = keys.credentials.list_credentials(
            ANON,
            owner=national_id(PERSON_ID),
            proof_token=day_old,
            status=None,
            page_size=0,
            page_token="",
        )
        assert len(page) == 1
        # Signing keeps its own, shorter limit.
        assert reason_of(
            lambda: authorize(keys.credentials, identity, page[0], [sha256(b"a")], day_old)
        ) == "PERMISSION_DENIED/AUTH_TIME_TOO_OLD"
    finally:
        keys.close()


def test_an_access_token_is_no_proof_of_a_person(keys, identity):
    from egov_keys.domain.model import RevocationReason

    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    # identity's access token of the same person for keys: any client the person used holds
    # one, so it proves nothing about who is at the keyboard now.
    access = identity.token(
        sub=credential.created_by,
        typ="at+jwt",
        aud="urn:egov:keys",
        identifier=f"TH-PID:{PERSON_ID}",
        client_id="some-portal",
        verified_claims={"verification": {"trust_framework": "th_dopa", "assurance_level": "2.3"}},
    )
    mismatch = "UNAUTHENTICATED/TOKEN_TYPE_MISMATCH"
    assert reason_of(lambda: authorize(keys.credentials, identity, credential, hashes, access)) == (
        mismatch
    )
    assert reason_of(
        lambda: keys.credentials.revoke(
            ANON, credential.credential_id, RevocationReason.KEY_COMPROMISE, access
        )
    ) == mismatch
    assert reason_of(lambda: renew(keys.credentials, credential, "r", access)) == mismatch
    assert reason_of(
        lambda: keys.credentials.create(
            ANON,
            idempotency_key="with-access-token",
            owner=national_id(PERSON_ID),
            kind=OwnerKind.NATURAL_PERSON,
            algorithm=KeyAlgorithm.ECDSA_P256,
            names=PERSON_NAMES,
            proof_token=access,
            backend=None,
        )
    ) == mismatch
    # A token of another type, or of none, is refused by the verifier itself.
    for typ in ("logout+jwt", None):
        other = identity.token(sub=credential.created_by, identifier=f"TH-PID:{PERSON_ID}")
        if typ is None:
            import jwt

            claims = jwt.decode(other, options={"verify_signature": False})
            other = jwt.encode(  # PyJWT writes typ JWT unless told None
                claims, identity.key, algorithm="ES256", headers={"kid": identity.kid, "typ": None}
            )
        else:
            other = identity.token(sub=credential.created_by, typ=typ,
                                   identifier=f"TH-PID:{PERSON_ID}")
        assert reason_of(
            lambda token=other: authorize(keys.credentials, identity, credential, hashes, token)
        ) == mismatch
    assert audit_outcomes(keys, "sad.authorize") == ["failure:TOKEN_TYPE_MISMATCH"] * 3
    sad = authorize(keys.credentials, identity, credential, hashes)  # the ID token still does
    assert len(sign(keys.credentials, credential, sad, hashes)) == 1


def test_juristic_and_seal_proofs_must_be_access_tokens(keys, identity):
    company = keys.credentials.create(
        ANON,
        idempotency_key="acme",
        owner=juristic_number(COMPANY_ID),
        kind=OwnerKind.LEGAL_PERSON,
        algorithm=KeyAlgorithm.ECDSA_P256,
        names=COMPANY_NAMES,
        proof_token=identity.representative(names=COMPANY_CLAIMS),
        backend=None,
    )
    seal = keys.credentials.create(
        ANON,
        idempotency_key="seal",
        owner=juristic_number(AGENCY_ID),
        kind=OwnerKind.ELECTRONIC_SEAL,
        algorithm=KeyAlgorithm.ECDSA_P256,
        names=AGENCY_NAMES,
        proof_token=identity.agency_client(),
        backend=None,
    )
    hashes = [sha256(b"a")]
    # The same claims in an ID token (typ JWT): identity issues neither kind that way.
    representation_id_token = identity.token(
        sub="sub-rep",
        identifier=f"TH-PID:{OTHER_PERSON_ID}",
        act={"sub": "sub-rep"},
        representation={
            "juristic_person": f"TH-JUR:{COMPANY_ID}",
            "role": "director",
            "powers": ["sign"],
            "grant_id": "grant-1",
        },
    )
    agency_id_token = identity.token(
        sub="agency-client",
        client_id="agency-client",
        agency=f"TH-JUR:{AGENCY_ID}",
        scope="keys:seal",
        aud="urn:egov:keys",
    )
    for credential, token in ((company, representation_id_token), (seal, agency_id_token)):
        assert reason_of(
            lambda c=credential, t=token: authorize(keys.credentials, identity, c, hashes, t)
        ) == "UNAUTHENTICATED/TOKEN_TYPE_MISMATCH"
    sad = authorize(keys.credentials, identity, company, hashes, identity.representative())
    assert len(sign(keys.credentials, company, sad, hashes)) == 1
