"""CIBA poll mode and acting for a juristic person (token exchange)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from egov_identity.domain import model as m
from egov_pki.identifiers import parse_identifier
from egov_pki.tokens import StaticJwks, TokenVerifier
from identity_world import (
    ISSUER,
    PASSWORD,
    PORTAL_SCOPES,
    MachineKey,
    World,
    current_totp,
    enrol_login,
    proof_person,
    register_machine,
    register_portal,
    totp_secret,
)


class Device:
    def __init__(self, world: World, session_id: str) -> None:
        self.world = world
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.device_id = world.service.register_device(session_id, der, "phone")

    def proof(self, **claims: object) -> str:
        return jwt.encode({"aud": ISSUER, "iat": int(self.world.service.now()),
                           "jti": uuid.uuid4().hex, **claims}, self.key, algorithm="ES256")

    def decide(self, auth_req_id: str, approve: bool) -> None:
        self.world.service.decide_approval(
            self.device_id, auth_req_id, approve,
            self.proof(auth_req_id=auth_req_id, approve=approve))


def _ciba_setup(world: World) -> tuple[MachineKey, Device, str]:
    register_portal(world)
    _, username, secret = enrol_login(world)
    session = world.service.login("portal", username, PASSWORD, current_totp(world, secret))
    device = Device(world, session.login_session_id)
    key = MachineKey()
    register_machine(world, key, client_id="kiosk", grant_types=(m.GRANT_CIBA,),
                     scopes=("openid", "profile"))
    return key, device, username


def _start(world: World, key: MachineKey, hint: str) -> m.CibaStart:
    return world.service.backchannel_authenticate(
        "kiosk", key.assertion("kiosk", now=world.service.now), hint, "Code 42", "openid profile")


def _poll(world: World, key: MachineKey, auth_req_id: str) -> m.TokenResponse:
    return world.service.token(m.TokenRequest(
        grant_type=m.GRANT_CIBA, client_id="kiosk",
        client_assertion=key.assertion("kiosk", now=world.service.now), auth_req_id=auth_req_id))


def test_ciba_approve_gives_aal2_tokens(world: World) -> None:
    key, device, username = _ciba_setup(world)
    start = _start(world, key, username)
    with pytest.raises(FailedPrecondition) as info:
        _poll(world, key, start.auth_req_id)
    assert info.value.reason == "AUTHORIZATION_PENDING"
    pending = world.service.list_pending_approvals(device.device_id, device.proof())
    assert [p.binding_message for p in pending] == ["Code 42"]
    device.decide(start.auth_req_id, True)
    world.advance(start.interval)
    tokens = _poll(world, key, start.auth_req_id)
    verifier = TokenVerifier(StaticJwks(world.service.keyring.jwks()), issuer=ISSUER,
                             audiences=["kiosk"], clock=world.service.now)
    assert verifier.verify(tokens.id_token).aal == 2
    world.advance(start.interval)
    with pytest.raises(InvalidArgument):  # tokens only once
        _poll(world, key, start.auth_req_id)


def test_ciba_deny(world: World) -> None:
    key, device, username = _ciba_setup(world)
    start = _start(world, key, username)
    device.decide(start.auth_req_id, False)
    with pytest.raises(FailedPrecondition) as info:
        _poll(world, key, start.auth_req_id)
    assert info.value.reason == "ACCESS_DENIED"


def test_ciba_polling_too_fast_gets_slow_down(world: World) -> None:
    key, _device, username = _ciba_setup(world)
    start = _start(world, key, username)
    with pytest.raises(FailedPrecondition):
        _poll(world, key, start.auth_req_id)
    with pytest.raises(ResourceExhausted) as info:
        _poll(world, key, start.auth_req_id)
    assert info.value.reason == "SLOW_DOWN"
    assert int(info.value.metadata["interval"]) == start.interval + 5


def test_ciba_request_expires(world: World) -> None:
    key, device, username = _ciba_setup(world)
    start = _start(world, key, username)
    world.advance(start.expires_in + 1)
    with pytest.raises(FailedPrecondition) as info:
        _poll(world, key, start.auth_req_id)
    assert info.value.reason == "EXPIRED_TOKEN"
    with pytest.raises(FailedPrecondition) as info:
        device.decide(start.auth_req_id, True)
    assert info.value.reason == "AUTH_REQUEST_EXPIRED"


def test_ciba_for_unknown_person_looks_like_any_other_request(world: World) -> None:
    key, _device, _ = _ciba_setup(world)
    start = _start(world, key, "nobody-at-all")
    assert start.auth_req_id
    with pytest.raises(FailedPrecondition) as info:
        _poll(world, key, start.auth_req_id)
    assert info.value.reason == "AUTHORIZATION_PENDING"


def test_ciba_refuses_an_acr_it_cannot_meet(world: World) -> None:
    """An approval on the device is AAL2: a client asking for AAL3 is refused at once, as
    Authorize refuses it, rather than handed an AAL2 token it did not ask for."""
    key, device, username = _ciba_setup(world)
    s = world.service
    with pytest.raises(PermissionDenied) as info:
        s.backchannel_authenticate("kiosk", key.assertion("kiosk", now=s.now), username,
                                   "Code 42", "openid", acr_values="urn:egov:aal:3")
    assert info.value.reason == "ACR_NOT_MET"
    assert info.value.metadata["required_aal"] == "3"
    assert device_sees(world, device) == []
    start = s.backchannel_authenticate("kiosk", key.assertion("kiosk", now=s.now), username,
                                       "Code 42", "openid", acr_values="urn:egov:aal:2")
    device.decide(start.auth_req_id, True)
    verifier = TokenVerifier(StaticJwks(s.keyring.jwks()), issuer=ISSUER,
                             audiences=["kiosk"], clock=s.now)
    assert verifier.verify(_poll(world, key, start.auth_req_id).id_token).aal == 2


def test_ciba_takes_acr_values_as_a_list_of_acceptable_levels(world: World) -> None:
    """OIDC Core 3.1.2.1 (CIBA Core 7.1 takes acr_values from it): "AAL2 or AAL3" is met by an
    approval on the device (AAL2), and the token says AAL2."""
    key, device, username = _ciba_setup(world)
    s = world.service
    start = s.backchannel_authenticate("kiosk", key.assertion("kiosk", now=s.now), username,
                                       "Code 42", "openid",
                                       acr_values="urn:egov:aal:3 urn:egov:aal:2")
    device.decide(start.auth_req_id, True)
    verifier = TokenVerifier(StaticJwks(s.keyring.jwks()), issuer=ISSUER,
                             audiences=["kiosk"], clock=s.now)
    assert verifier.verify(_poll(world, key, start.auth_req_id).id_token).aal == 2


def device_sees(world: World, device: Device) -> list[str]:
    pending = world.service.list_pending_approvals(device.device_id, device.proof())
    return [p.binding_message for p in pending]


@pytest.mark.parametrize("message", [
    "Pay 10 THB\nto shop 7", "Code 42\r", "Code\t42", "Code 42\x1b[2J", "Code\x0042",
    "Pay \u202e00001 THB\u202c", "Code \u2067 42", "Code\u200f42", "Code\u200b42",
    "Pay\u2028100", "Code \ue000",
])
def test_a_binding_message_that_could_spoof_the_device_screen_is_refused(
        world: World, message: str) -> None:
    """CIBA Core 7.1: plain text the person compares by eye. Line breaks, controls (terminal
    escapes), direction overrides and isolates, invisible characters could show the person
    something other than what the client displays (section 13 invalid_binding_message)."""
    key, device, username = _ciba_setup(world)
    s = world.service
    with pytest.raises(InvalidArgument) as info:
        s.backchannel_authenticate("kiosk", key.assertion("kiosk", now=s.now), username,
                                   message, "openid")
    assert info.value.reason == "BINDING_MESSAGE_INVALID"
    assert info.value.field_violations[0].field == "binding_message"
    assert device_sees(world, device) == []


def test_a_thai_binding_message_reaches_the_device_as_sent(world: World) -> None:
    key, device, username = _ciba_setup(world)
    s = world.service
    message = "ชำระเงิน ๑๐ บาท ที่ร้านค้า ๗ รหัส 42 ฿"
    s.backchannel_authenticate("kiosk", key.assertion("kiosk", now=s.now), username, message,
                               "openid")
    assert device_sees(world, device) == [message]


def test_proofing_the_owner_revokes_what_a_squatter_bound_to_their_national_id(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """A squatter proofed someone's national id at IAL 1.1 (no evidence) and bound a password,
    TOTP and a CIBA device. Once the owner proofs at 2.3 (the same person record), only what
    the owner binds afterwards counts: the squatter's password, TOTP, device, login sessions,
    refresh tokens and approvals are gone, and no log line names the national id."""
    caplog.set_level(logging.DEBUG, logger="egov_identity")
    register_portal(world)
    key = MachineKey()
    register_machine(world, key, client_id="kiosk", grant_types=(m.GRANT_CIBA,),
                     scopes=("openid", "identifier"))
    s = world.service
    owner = [p for p in world.population.people if p.identifier.startswith("TH-PID")][3]
    squat = s.complete_proofing(s.start_proofing(parse_identifier(owner.identifier),
                                                 "1.1").session_id)
    s.set_password(squat.person_id, "quartz meadow harbor violin",
                   enrolment_code=squat.enrolment_code, username="squat")
    first = s.login("portal", "squat", "quartz meadow harbor violin")
    squat_totp = totp_secret(s.enrol_totp(first.login_session_id))
    s.confirm_totp(first.login_session_id, current_totp(world, squat_totp))
    world.advance(30)
    squat_aal2 = s.login("portal", "squat", "quartz meadow harbor violin",
                         current_totp(world, squat_totp))
    squat_device = Device(world, squat_aal2.login_session_id)
    squat_refresh = _code_tokens(world, squat_aal2).refresh_token
    approved = s.backchannel_authenticate("kiosk", key.assertion("kiosk", now=s.now),
                                          owner.identifier, "Code 7", "openid identifier")
    squat_device.decide(approved.auth_req_id, True)
    world.advance(30)

    _, person_id, code = proof_person(world, 3)  # the owner, at the desk: chip + in person

    assert person_id == squat.person_id and s.person(person_id).ial == "2.3"
    with pytest.raises(Unauthenticated) as info:
        s.login("portal", "squat", "quartz meadow harbor violin", current_totp(world, squat_totp))
    assert info.value.reason == "CREDENTIALS_INVALID"
    with pytest.raises(Unauthenticated) as info:
        s.enrol_totp(squat_aal2.login_session_id)
    assert info.value.reason == "LOGIN_REQUIRED"
    with pytest.raises(Unauthenticated) as info:
        squat_device.decide(approved.auth_req_id, True)
    assert info.value.reason == "DEVICE_PROOF_INVALID"
    with pytest.raises(InvalidArgument) as info:
        s.token(m.TokenRequest(grant_type=m.GRANT_REFRESH_TOKEN, client_id="portal",
                               refresh_token=squat_refresh))
    assert info.value.reason == "INVALID_GRANT"
    with pytest.raises(FailedPrecondition) as info:  # approved by the squatter's device
        _poll(world, key, approved.auth_req_id)
    assert info.value.reason == "ACCESS_DENIED"

    # The owner binds their own: password with the code, TOTP with that password alone.
    s.set_password(person_id, PASSWORD, enrolment_code=code, username="owner")
    login = s.login("portal", "owner", PASSWORD)
    owner_totp = totp_secret(s.enrol_totp(login.login_session_id))
    s.confirm_totp(login.login_session_id, current_totp(world, owner_totp))
    world.advance(30)
    owner_device = Device(world, s.login("portal", "owner", PASSWORD,
                                         current_totp(world, owner_totp)).login_session_id)
    start = s.backchannel_authenticate("kiosk", key.assertion("kiosk", now=s.now),
                                       owner.identifier, "Code 8", "openid")
    assert device_sees(world, owner_device) == ["Code 8"]
    number = owner.identifier.split(":")[1]
    logged = [r for r in caplog.records if number in r.getMessage() or number in repr(r.__dict__)]
    assert logged == [] and any(r.getMessage() == "authenticators revoked by proofing"
                                for r in caplog.records)
    assert start.auth_req_id


def _code_tokens(world: World, session: m.LoginSession) -> m.TokenResponse:
    import base64
    import hashlib
    import secrets
    s = world.service
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    auth = s.authorize(login_session_id=session.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope="openid",
                       code_challenge=challenge, code_challenge_method="S256")
    return s.token(m.TokenRequest(
        grant_type="authorization_code", client_id="portal", code=auth.code,
        redirect_uri="https://portal.test/cb", code_verifier=verifier))


# ---------------------------------------------------------------- representation

def _person_tokens(world: World, index: int, client_id: str = "portal"
                   ) -> tuple[str, m.TokenResponse]:
    import base64
    import hashlib
    import secrets
    src, username, secret = enrol_login(world, index)
    s = world.service
    session = s.login(client_id, username, PASSWORD, current_totp(world, secret))
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    auth = s.authorize(login_session_id=session.login_session_id, client_id=client_id,
                       redirect_uri="https://portal.test/cb", scope="openid",
                       code_challenge=challenge, code_challenge_method="S256")
    return src.identifier, s.token(m.TokenRequest(
        grant_type="authorization_code", client_id=client_id, code=auth.code,
        redirect_uri="https://portal.test/cb", code_verifier=verifier))


def _company_world(world: World,  # type: ignore[no-untyped-def]
                   biz_scopes: tuple[str, ...] = ("keys:sign", "identifier"), **biz: Any):
    # The portal the directors log in to manages representations for them.
    register_portal(world, scopes=(*PORTAL_SCOPES, "identity:representation"))
    company = world.population.companies[0]
    thai = [p.identifier for p in world.population.people if p.identifier.startswith("TH-PID")]
    director_index = thai.index(company.directors[0])
    outsider_index = next(i for i, p in enumerate(thai) if p not in company.directors)
    world.service.register_juristic_person(parse_identifier(company.identifier),
                                           m.JuristicKind.COMPANY, "", "", [])
    key = MachineKey()
    register_machine(world, key, client_id="biz-portal", grant_types=(m.GRANT_TOKEN_EXCHANGE,),
                     scopes=biz_scopes, **biz)
    return company, director_index, outsider_index, key


def _exchange(world: World, key: MachineKey, access_token: str, company: str,
              scope: str = "keys:sign") -> m.TokenResponse:
    return world.service.token(m.TokenRequest(
        grant_type=m.GRANT_TOKEN_EXCHANGE, client_id="biz-portal",
        client_assertion=key.assertion("biz-portal", now=world.service.now),
        subject_token=access_token, subject_token_type=m.TOKEN_TYPE_ACCESS, act_for=company,
        scope=scope))


def test_director_grant_lets_the_representative_act_for_the_company(world: World) -> None:
    company, director, outsider, key = _company_world(world)
    _, director_tokens = _person_tokens(world, director)
    rep_id, rep_tokens = _person_tokens(world, outsider)
    now = world.service.now()
    grant = world.service.grant_representation(
        juristic_person=parse_identifier(company.identifier),
        representative=parse_identifier(rep_id), role="authorised-signatory", powers=["sign"],
        valid_from=None, valid_until=now + 3600, grantor_id_token=director_tokens.id_token,
        caller_client_id="portal")
    assert grant.status is m.RepresentationStatus.ACTIVE
    exchanged = _exchange(world, key, rep_tokens.access_token, company.identifier,
                          "keys:sign identifier")
    verifier = TokenVerifier(StaticJwks(world.service.keyring.jwks()), issuer=ISSUER,
                             audiences=["urn:egov:keys"], clock=world.service.now)
    token = verifier.verify(exchanged.access_token)
    assert token.subject == company.identifier
    assert token.representation is not None
    assert token.representation.powers == {"sign"}
    assert token.act is not None and token.act["identifier"] == rep_id
    # the company register's names, which keys certifies for the company's credentials
    juristic = world.service.juristic_person(company.identifier)
    assert token.claims["representation"]["organization_name#th"] == juristic.name_th != ""
    # The national id only when asked for (the identifier scope), not whenever allowed.
    plain = verifier.verify(_exchange(world, key, rep_tokens.access_token,
                                      company.identifier).access_token)
    assert plain.act is not None and "identifier" not in plain.act
    listed, _ = world.service.list_representations(juristic_person=company.identifier)
    assert [r.representation_id for r in listed] == [grant.representation_id]


def test_non_director_cannot_grant(world: World) -> None:
    company, _director, outsider, _key = _company_world(world)
    _, outsider_tokens = _person_tokens(world, outsider)
    with pytest.raises(PermissionDenied) as info:
        world.service.grant_representation(
            juristic_person=parse_identifier(company.identifier),
            representative=parse_identifier(company.directors[1]), role="x", powers=["sign"],
            valid_from=None, valid_until=world.service.now() + 3600,
            grantor_id_token=outsider_tokens.id_token,
        caller_client_id="portal")
    assert info.value.reason == "NOT_A_DIRECTOR"


def test_without_a_grant_no_token(world: World) -> None:
    company, _director, outsider, key = _company_world(world)
    _, rep_tokens = _person_tokens(world, outsider)
    with pytest.raises(PermissionDenied) as info:
        _exchange(world, key, rep_tokens.access_token, company.identifier)
    assert info.value.reason == "NOT_REPRESENTATIVE"


def test_expired_and_revoked_grants_yield_no_token(world: World) -> None:
    company, director, outsider, key = _company_world(world)
    _, director_tokens = _person_tokens(world, director)
    rep_id, _ = _person_tokens(world, outsider)
    s = world.service
    grant = s.grant_representation(
        juristic_person=parse_identifier(company.identifier),
        representative=parse_identifier(rep_id), role="signatory", powers=["sign"],
        valid_from=None, valid_until=s.now() + 100, grantor_id_token=director_tokens.id_token,
        caller_client_id="portal")
    world.advance(101)
    _, rep_tokens = _person_tokens(world, outsider)
    with pytest.raises(PermissionDenied) as info:
        _exchange(world, key, rep_tokens.access_token, company.identifier)
    assert info.value.reason == "NOT_REPRESENTATIVE"
    assert s.representation(grant.representation_id).status is m.RepresentationStatus.EXPIRED

    _, director_tokens = _person_tokens(world, director)
    grant2 = s.grant_representation(
        juristic_person=parse_identifier(company.identifier),
        representative=parse_identifier(rep_id), role="signatory", powers=["sign"],
        valid_from=None, valid_until=s.now() + 3600, grantor_id_token=director_tokens.id_token,
        caller_client_id="portal")
    acting = _exchange(world, key, rep_tokens.access_token, company.identifier)
    assert s.introspect(s.get_client("biz-portal"), acting.access_token)["active"] is True
    s.revoke_representation(grant2.representation_id, director_tokens.id_token, "portal")
    biz_portal = s.get_client("biz-portal")
    assert s.introspect(biz_portal, acting.access_token) == {"active": False}  # at its next check
    with pytest.raises(PermissionDenied) as info:
        _exchange(world, key, rep_tokens.access_token, company.identifier)
    assert info.value.reason == "NOT_REPRESENTATIVE"


def test_grant_without_sign_power_cannot_get_a_signing_token(world: World) -> None:
    company, director, outsider, key = _company_world(world)
    _, director_tokens = _person_tokens(world, director)
    rep_id, rep_tokens = _person_tokens(world, outsider)
    world.service.grant_representation(
        juristic_person=parse_identifier(company.identifier),
        representative=parse_identifier(rep_id), role="clerk", powers=["register-documents"],
        valid_from=None, valid_until=world.service.now() + 3600,
        grantor_id_token=director_tokens.id_token,
        caller_client_id="portal")
    with pytest.raises(PermissionDenied) as info:
        _exchange(world, key, rep_tokens.access_token, company.identifier)
    assert info.value.reason == "POWER_MISSING"




def test_agency_registers_from_the_synthetic_register(world: World) -> None:
    agency = world.population.agencies[0]
    registered = world.service.register_juristic_person(
        parse_identifier(agency.identifier), m.JuristicKind.AGENCY, "", "", [])
    assert registered.kind is m.JuristicKind.AGENCY
    assert registered.directors == agency.directors


def test_a_director_unknown_to_the_company_register_is_refused(world: World) -> None:
    company = world.population.companies[0]
    stranger = next(p.identifier for p in world.population.people
                    if p.identifier.startswith("TH-PID") and p.identifier not in company.directors)
    with pytest.raises(FailedPrecondition) as info:
        world.service.register_juristic_person(parse_identifier(company.identifier),
                                               m.JuristicKind.COMPANY, "", "",
                                               [parse_identifier(stranger)])
    assert info.value.reason == "NOT_IN_COMPANY_REGISTER"


def test_representations_are_listed_page_by_page(world: World) -> None:
    company, director, outsider, _key = _company_world(world)
    _, director_tokens = _person_tokens(world, director)
    rep_id, _ = _person_tokens(world, outsider)
    s = world.service
    for role in ("a", "b", "c"):
        s.grant_representation(
            juristic_person=parse_identifier(company.identifier),
            representative=parse_identifier(rep_id), role=role, powers=["sign"],
            valid_from=None, valid_until=s.now() + 3600,
            grantor_id_token=director_tokens.id_token,
        caller_client_id="portal")
    page1, token = s.list_representations(representative=rep_id, page_size=2)
    page2, last = s.list_representations(representative=rep_id, page_size=2, page_token=token)
    assert len(page1) == 2
    assert sorted(r.role for r in page1 + page2) == ["a", "b", "c"]  # each exactly once
    assert last == ""
    with pytest.raises(InvalidArgument) as info:
        s.list_representations(page_size=2)
    assert info.value.reason == "FILTER_MISSING"


def test_token_exchange_refuses_an_audience_its_scopes_do_not_name(world: World) -> None:
    """RFC 8693 section 2.2.2 invalid_target: the audience follows the granted scopes, so a
    client cannot have a token minted for another client or another service."""
    company, director, outsider, key = _company_world(world)
    _, director_tokens = _person_tokens(world, director)
    rep_id, rep_tokens = _person_tokens(world, outsider)
    s = world.service
    s.grant_representation(
        juristic_person=parse_identifier(company.identifier),
        representative=parse_identifier(rep_id), role="signatory", powers=["sign"],
        valid_from=None, valid_until=s.now() + 3600, grantor_id_token=director_tokens.id_token,
        caller_client_id="portal")
    for audience in ("portal", "urn:egov:registry"):
        with pytest.raises(InvalidArgument) as info:
            s.token(m.TokenRequest(
                grant_type=m.GRANT_TOKEN_EXCHANGE, client_id="biz-portal",
                client_assertion=key.assertion("biz-portal", now=s.now),
                subject_token=rep_tokens.access_token, subject_token_type=m.TOKEN_TYPE_ACCESS,
                act_for=company.identifier, scope="keys:sign", audience=audience))
        assert info.value.reason == "INVALID_TARGET"
    named = s.token(m.TokenRequest(
        grant_type=m.GRANT_TOKEN_EXCHANGE, client_id="biz-portal",
        client_assertion=key.assertion("biz-portal", now=s.now),
        subject_token=rep_tokens.access_token, subject_token_type=m.TOKEN_TYPE_ACCESS,
        act_for=company.identifier, scope="keys:sign", audience="urn:egov:keys"))
    verifier = TokenVerifier(StaticJwks(s.keyring.jwks()), issuer=ISSUER,
                             audiences=["urn:egov:keys"], clock=s.now)
    assert verifier.verify(named.access_token).audience == ("urn:egov:keys",)


@pytest.mark.parametrize("aud", [5, {"portal": 1}, None, True])
def test_a_grantor_token_whose_audience_is_not_text_is_unauthenticated(
        world: World, aud: object) -> None:
    company, _director, outsider, _key = _company_world(world)
    rep_id, _ = _person_tokens(world, outsider)
    s = world.service
    kid = s.keyring.jwks()["keys"][0]["kid"]
    forged = jwt.encode({"iss": ISSUER, "sub": "x", "aud": aud, "iat": int(s.now()),
                         "exp": int(s.now()) + 60}, ec.generate_private_key(ec.SECP256R1()),
                        algorithm="ES256", headers={"kid": kid})
    with pytest.raises(Unauthenticated):
        s.grant_representation(
            juristic_person=parse_identifier(company.identifier),
            representative=parse_identifier(rep_id), role="signatory", powers=["sign"],
            valid_from=None, valid_until=s.now() + 3600, grantor_id_token=forged,
        caller_client_id="portal")


@pytest.mark.parametrize("page_token", ["9" * 30, "-1", "x"])
def test_a_page_token_that_was_never_handed_out_is_invalid_argument(
        world: World, page_token: str) -> None:
    company = world.population.companies[0]
    with pytest.raises(InvalidArgument) as info:
        world.service.list_representations(juristic_person=company.identifier,
                                           page_token=page_token)
    assert info.value.reason == "PAGE_TOKEN_INVALID"


def test_token_exchange_acts_under_the_grant_that_has_the_power_asked_for(world: World) -> None:
    """A person may hold several grants for one company (a clerk's without 'sign', a
    signatory's with it): a signing scope is served by the grant that has the power, whichever
    the database returns first."""
    company, director, outsider, key = _company_world(world)
    _, director_tokens = _person_tokens(world, director)
    rep_id, rep_tokens = _person_tokens(world, outsider)
    s = world.service
    for role, powers in (("clerk", ["register-documents"]), ("signatory", ["sign"]),
                         ("sealer", ["seal"])):
        s.grant_representation(
            juristic_person=parse_identifier(company.identifier),
            representative=parse_identifier(rep_id), role=role, powers=powers,
            valid_from=None, valid_until=s.now() + 3600,
            grantor_id_token=director_tokens.id_token,
        caller_client_id="portal")
    exchanged = s.token(m.TokenRequest(
        grant_type=m.GRANT_TOKEN_EXCHANGE, client_id="biz-portal",
        client_assertion=key.assertion("biz-portal", now=s.now),
        subject_token=rep_tokens.access_token, subject_token_type=m.TOKEN_TYPE_ACCESS,
        act_for=company.identifier, scope="keys:sign"))
    verifier = TokenVerifier(StaticJwks(s.keyring.jwks()), issuer=ISSUER,
                             audiences=["urn:egov:keys"], clock=s.now)
    claims = verifier.verify(exchanged.access_token).claims
    assert claims["representation"]["role"] == "signatory"
    assert claims["representation"]["powers"] == ["sign"]


def _grant(world: World, company: str, representative: str, director_id_token: str,
           powers: list[str], caller_client_id: str | None = "portal") -> m.Representation:
    s = world.service
    return s.grant_representation(
        juristic_person=parse_identifier(company), representative=parse_identifier(representative),
        role="staff", powers=powers, valid_from=None, valid_until=s.now() + 3600,
        grantor_id_token=director_id_token, caller_client_id=caller_client_id)


def test_a_directors_id_token_grants_only_through_the_portal_it_was_issued_to(
        world: World) -> None:
    # Any relying party the director logged in to holds an ID token of theirs; with it, it must
    # not make anyone a signatory of the company.
    company, director, outsider, _ = _company_world(world)
    register_portal(world, client_id="unrelated-rp")  # a relying party, not for representation
    s = world.service
    rep_id, _ = _person_tokens(world, outsider)
    _, at_portal = _person_tokens(world, director)
    _, elsewhere = _person_tokens(world, director, "unrelated-rp")
    refusals = [
        (elsewhere.id_token, None, Unauthenticated, "TOKEN_MISSING"),
        (elsewhere.id_token, "unrelated-rp", PermissionDenied, "CLIENT_NOT_ALLOWED"),
        (elsewhere.id_token, "portal", Unauthenticated, "TOKEN_AUDIENCE_MISMATCH"),
        # the portal's access token of the director is no ID token (nor meant for the portal)
        (at_portal.access_token, "portal", Unauthenticated, "TOKEN_AUDIENCE_MISMATCH"),
    ]
    for id_token, caller, error, reason in refusals:
        with pytest.raises(error) as info:
            _grant(world, company.identifier, rep_id, id_token, ["sign"], caller)
        assert info.value.reason == reason, (caller, reason)
    grant = _grant(world, company.identifier, rep_id, at_portal.id_token, ["sign"])
    with pytest.raises(Unauthenticated) as info:
        s.revoke_representation(grant.representation_id, elsewhere.id_token, "portal")
    assert info.value.reason == "TOKEN_AUDIENCE_MISMATCH"
    assert s.representation(grant.representation_id).status is m.RepresentationStatus.ACTIVE


@pytest.mark.parametrize(("powers", "scope", "refused"), [
    (["register-documents"], "keys:seal", "seal"),
    (["sign"], "registry:issue", "register-documents"),
    (["seal"], "keys:sign", "sign"),
    (["sign", "seal"], "keys:sign keys:seal", None),
])
def test_each_scope_needs_its_power_in_the_grant(world: World, powers: list[str], scope: str,
                                                 refused: str | None) -> None:
    company, director, outsider, key = _company_world(
        world, ("keys:sign", "keys:seal", "registry:issue"))
    _, director_tokens = _person_tokens(world, director)
    rep_id, rep_tokens = _person_tokens(world, outsider)
    _grant(world, company.identifier, rep_id, director_tokens.id_token, powers)
    if refused is None:
        assert _exchange(world, key, rep_tokens.access_token, company.identifier, scope)
        return
    with pytest.raises(PermissionDenied) as info:
        _exchange(world, key, rep_tokens.access_token, company.identifier, scope)
    assert info.value.reason == "POWER_MISSING" and refused in info.value.message


def test_a_pairwise_client_sees_the_representative_under_its_own_subject(world: World) -> None:
    company, director, outsider, key = _company_world(
        world, ("keys:sign",), subject_type=m.SubjectType.PAIRWISE,
        sector_identifier="https://biz.example")
    s = world.service
    _, director_tokens = _person_tokens(world, director)
    rep_id, rep_tokens = _person_tokens(world, outsider)
    _grant(world, company.identifier, rep_id, director_tokens.id_token, ["sign"])
    exchanged = _exchange(world, key, rep_tokens.access_token, company.identifier)
    verifier = TokenVerifier(StaticJwks(s.keyring.jwks()), issuer=ISSUER,
                             audiences=["urn:egov:keys"], clock=s.now)
    act = verifier.verify(exchanged.access_token).act
    person_id = s.person_by_identifier(rep_id).person_id  # type: ignore[union-attr]
    assert act is not None
    assert act["sub"] == s.subject_for(person_id, s.get_client("biz-portal"))
    assert act["sub"] != person_id and "identifier" not in act


class _CompanyRegister:
    """The company register as it stands today: the population's, with a company's directors
    changed since it was registered, or out of reach."""

    def __init__(self, world: World, directors: tuple[str, ...] | None = None,
                 reachable: bool = True) -> None:
        self.name = world.population.name
        self._population = world.population
        self._directors = directors
        self._reachable = reachable

    def company(self, identifier: str) -> Any:
        if not self._reachable:
            raise ConnectionError("connection refused")
        found = self._population.company(identifier)
        if found is None or self._directors is None:
            return found
        return replace(found, directors=self._directors)


def test_a_director_who_left_the_register_can_no_longer_grant_or_revoke(world: World) -> None:
    """Who is a director is the company register's answer on the day, not the list stored at
    RegisterJuristicPerson: a director who resigned since can neither grant nor revoke."""
    company, director, outsider, _key = _company_world(world)
    s = world.service
    _, director_tokens = _person_tokens(world, director)
    rep_id, _ = _person_tokens(world, outsider)
    grant = _grant(world, company.identifier, rep_id, director_tokens.id_token, ["sign"])
    s.companies = _CompanyRegister(world, directors=company.directors[1:])  # resigned
    with pytest.raises(PermissionDenied) as info:
        _grant(world, company.identifier, rep_id, director_tokens.id_token, ["sign"])
    assert info.value.reason == "NOT_A_DIRECTOR"
    with pytest.raises(PermissionDenied) as info:
        s.revoke_representation(grant.representation_id, director_tokens.id_token, "portal")
    assert info.value.reason == "NOT_A_DIRECTOR"
    assert s.representation(grant.representation_id).status is m.RepresentationStatus.ACTIVE
    assert s.juristic_person(company.identifier).directors == company.directors[1:]


def test_a_director_appointed_after_registration_grants(world: World) -> None:
    company, director, outsider, _key = _company_world(world)
    s = world.service
    rep_id, _ = _person_tokens(world, director)
    appointed_id, appointed_tokens = _person_tokens(world, outsider)
    s.companies = _CompanyRegister(world, directors=(*company.directors, appointed_id))
    grant = _grant(world, company.identifier, rep_id, appointed_tokens.id_token, ["sign"])
    assert grant.granted_by == appointed_id
    assert appointed_id in s.juristic_person(company.identifier).directors


def test_grant_and_revoke_are_unavailable_while_the_register_cannot_be_asked(
        world: World) -> None:
    """A stale director list does not decide: no register, no grant and no revocation."""
    company, director, outsider, _key = _company_world(world)
    s = world.service
    _, director_tokens = _person_tokens(world, director)
    rep_id, _ = _person_tokens(world, outsider)
    grant = _grant(world, company.identifier, rep_id, director_tokens.id_token, ["sign"])
    s.companies = _CompanyRegister(world, reachable=False)
    with pytest.raises(Unavailable) as info:
        _grant(world, company.identifier, rep_id, director_tokens.id_token, ["seal"])
    assert info.value.reason == "COMPANY_REGISTER_UNAVAILABLE"
    with pytest.raises(Unavailable) as info:
        s.revoke_representation(grant.representation_id, director_tokens.id_token, "portal")
    assert info.value.reason == "COMPANY_REGISTER_UNAVAILABLE"
    listed, _ = s.list_representations(juristic_person=company.identifier)
    assert [(r.representation_id, r.status) for r in listed] == [
        (grant.representation_id, m.RepresentationStatus.ACTIVE)]
