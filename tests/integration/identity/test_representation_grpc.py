"""Acting for a company over gRPC: register it, a director grants, the representative's token is
exchanged (RFC 8693) for one that carries `act` and the powers; a non-director cannot grant."""

from __future__ import annotations

import pytest
from egov_clients.identity import GRANT_TOKEN_EXCHANGE, MachineKey
from egov_common.errors import Code, EgovError
from egov_pki.tokens import HttpJwks, TokenVerifier
from identity_process import (
    ADMIN_ID,
    PASSWORD,
    POPULATION,
    PORTAL_ID,
    REDIRECT,
    RunningIdentity,
    setup_citizen,
    thai_citizens,
)


def _tokens(identity: RunningIdentity, admin_key: MachineKey, index: int):  # type: ignore[no-untyped-def]
    import time
    username, secret = setup_citizen(identity, admin_key, index=index, register_portal=False)
    return identity.client.login_and_get_tokens(
        PORTAL_ID, REDIRECT, username, PASSWORD, totp_secret=secret, scope="openid",
        totp_at=time.time() + 30)


def test_director_grant_and_token_exchange(identity: RunningIdentity,
                                           admin_key: MachineKey) -> None:
    c = identity.client
    setup_citizen(identity, admin_key, index=0)  # registers the portal (idempotent setup)
    company = POPULATION.companies[0]
    people = [p.identifier for p in thai_citizens()]
    director = people.index(company.directors[0])
    outsider = next(i for i, p in enumerate(people) if p not in company.directors and i > 10)
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:admin")
    c.register_juristic_person(admin, company.identifier)
    biz = MachineKey()
    c.register_client(admin, client_id="biz-portal", client_name="Biz Portal",
                      grant_types=[GRANT_TOKEN_EXCHANGE], scopes=["keys:sign", "identifier"],
                      key=biz)

    outsider_tokens = _tokens(identity, admin_key, outsider)
    with pytest.raises(EgovError) as info:
        c.grant_representation(outsider_tokens.id_token, company.identifier,
                               people[outsider], role="signatory", powers=["sign"],
                               portal_token=outsider_tokens.access_token)
    assert (info.value.code, info.value.reason) == (Code.PERMISSION_DENIED, "NOT_A_DIRECTOR")

    director_tokens = _tokens(identity, admin_key, director)
    with pytest.raises(EgovError) as info:  # no portal vouches for the call: anyone's could
        c.grant_representation(director_tokens.id_token, company.identifier, people[outsider],
                               role="signatory", powers=["sign"], portal_token="")
    assert (info.value.code, info.value.reason) == (Code.UNAUTHENTICATED, "TOKEN_MISSING")
    grant = c.grant_representation(director_tokens.id_token, company.identifier,
                                   people[outsider], role="authorised-signatory",
                                   powers=["sign"], portal_token=director_tokens.access_token)
    assert grant.status == 1  # ACTIVE

    acting = c.act_for("biz-portal", biz, outsider_tokens.access_token, company.identifier,
                       "keys:sign identifier")
    token = TokenVerifier(HttpJwks(identity.issuer + "/jwks"), issuer=identity.issuer,
                          audiences=["urn:egov:keys"]).verify(acting)
    assert token.subject == company.identifier
    assert token.representation is not None and token.representation.powers == {"sign"}
    assert token.act is not None and token.act["identifier"] == people[outsider]


@pytest.mark.parametrize(("field", "seconds", "nanos"), [
    ("valid_until", 2**40, 0), ("valid_until", -2**40, 0), ("valid_from", 0, -1),
    ("valid_from", 253402300800, 0)])
def test_a_validity_time_no_timestamp_can_hold_is_invalid_argument(
        identity: RunningIdentity, field: str, seconds: int, nanos: int) -> None:
    """protobuf lets a client send any seconds and nanos; the service says which field is
    wrong instead of failing with INTERNAL."""
    from egov.identity.v1 import representation_pb2 as rep_pb
    from egov_clients.identity import party
    company = POPULATION.companies[0]
    request = rep_pb.GrantRepresentationRequest(
        juristic_person=party(company.identifier), representative=party(company.directors[0]),
        role="signatory", powers=["sign"], grantor_id_token="not-checked-yet")
    request.valid_until.FromSeconds(2_000_000_000)
    getattr(request, field).seconds = seconds
    getattr(request, field).nanos = nanos
    c = identity.client
    with pytest.raises(EgovError) as info:
        c.call(c.representation.GrantRepresentation, request)
    assert (info.value.code, info.value.reason) == (Code.INVALID_ARGUMENT, "VALIDITY_INVALID")
    assert [v.field for v in info.value.field_violations] == [field]


def test_a_juristic_persons_directors_are_read_only_with_a_representation_scope(
        identity: RunningIdentity, admin_key: MachineKey) -> None:
    """The directors' national ids are personal data: not for anonymous callers nor for a
    client without identity:admin or identity:representation."""
    from egov.identity.v1 import representation_pb2 as rep_pb
    from egov_clients.identity import party
    c = identity.client
    company = POPULATION.companies[1]
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:admin")
    c.register_juristic_person(admin, company.identifier)
    proofing = c.client_credentials_token(ADMIN_ID, admin_key, "identity:proofing")
    request = rep_pb.GetJuristicPersonRequest(identifier=party(company.identifier))
    for token in ("", proofing):
        with pytest.raises(EgovError) as info:
            c.call(c.representation.GetJuristicPerson, request, token)
        assert (info.value.code, info.value.reason) == (Code.PERMISSION_DENIED, "SCOPE_MISSING")
    read = c.call(c.representation.GetJuristicPerson, request, admin).juristic_person
    assert [d.value for d in read.directors] == [
        d.partition(":")[2] for d in company.directors]


def test_an_enum_number_the_contract_does_not_define_is_refused_not_defaulted(
        identity: RunningIdentity, admin_key: MachineKey) -> None:
    """A typo in an admin's request must not become the default: a client meant to be PAIRWISE
    silently PUBLIC would show every client the same subject identifier."""
    from egov.identity.v1 import clients_pb2 as clients_pb
    from egov.identity.v1 import representation_pb2 as rep_pb
    from egov_clients.identity import party
    c = identity.client
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:admin")
    company = POPULATION.companies[0]  # refused: nothing is registered
    requests = [
        (c.representation.RegisterJuristicPerson,
         rep_pb.RegisterJuristicPersonRequest(identifier=party(company.identifier), kind=7)),
        (c.clients.RegisterClient, clients_pb.RegisterClientRequest(client=clients_pb.Client(
            client_id="typo-portal", client_name="Typo", redirect_uris=["https://t.test/cb"],
            grant_types=["authorization_code"], scopes=["openid"], subject_type=9))),
    ]
    for method, request in requests:
        with pytest.raises(EgovError) as info:
            c.call(method, request, admin)
        assert (info.value.code, info.value.reason) == (
            Code.INVALID_ARGUMENT, "ENUM_VALUE_UNKNOWN")
