"""Typed client of the identity service (``egov.identity.v1``) and the demo's steps.

    identity = IdentityClient(channel, issuer="http://127.0.0.1:8081")
    admin = identity.client_credentials_token(ADMIN_ID, admin_key, "identity:proofing")
    person_id, code = identity.proof_citizen(admin, citizen, target_ial="2.3")
    secret = identity.enrol_password_and_totp(person_id, code, "somchai", PASSWORD,
                                              client_id="portal")
    tokens = identity.login_and_get_tokens("portal", "https://portal/cb", "somchai", PASSWORD,
                                           totp_secret=secret, scope="openid profile keys:sign")

Errors from the server arrive as ``egov_common.errors.EgovError`` subclasses with their reason.
Token claims other services check (see README): ``iss``, ``aud`` (``urn:egov:<service>``),
``scope`` (``keys:sign``, ``keys:seal``, ``registry:issue``...), ``acr`` (``urn:egov:aal:2``),
``auth_time``, ``agency`` (machine clients), ``act`` + ``representation`` (acting for a company).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from egov.identity.v1 import authentication_pb2 as auth_pb
from egov.identity.v1 import authentication_pb2_grpc as auth_grpc
from egov.identity.v1 import clients_pb2 as clients_pb
from egov.identity.v1 import clients_pb2_grpc as clients_grpc
from egov.identity.v1 import oidc_pb2 as oidc_pb
from egov.identity.v1 import oidc_pb2_grpc as oidc_grpc
from egov.identity.v1 import proofing_pb2 as proofing_pb
from egov.identity.v1 import proofing_pb2_grpc as proofing_grpc
from egov.identity.v1 import representation_pb2 as rep_pb
from egov.identity.v1 import representation_pb2_grpc as rep_grpc
from egov.type.v1 import party_pb2
from egov_common.status import from_rpc_error
from jwt.algorithms import ECAlgorithm

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "GRANT_CIBA",
    "GRANT_TOKEN_EXCHANGE",
    "CitizenRecord",
    "DemoCitizen",
    "DeviceKey",
    "IdentityClient",
    "MachineKey",
    "Tokens",
    "decide",
    "demo_agency_machine_client",
    "demo_citizen_at_ial_2_3",
    "party",
    "pending_approvals",
    "pkce_pair",
    "register_device",
    "totp_now",
    "write_bootstrap_clients",
]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT_CIBA = "urn:openid:params:grant-type:ciba"
GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
_DEADLINE = 10.0
T = TypeVar("T")

_NAMESPACES = {
    "TH-PID": party_pb2.IDENTIFIER_NAMESPACE_TH_PID,
    "TH-JUR": party_pb2.IDENTIFIER_NAMESPACE_TH_JUR,
    "PASSPORT": party_pb2.IDENTIFIER_NAMESPACE_PASSPORT,
}


def party(identifier: str) -> party_pb2.PartyIdentifier:
    """``"TH-PID:1101700230708"`` -> PartyIdentifier (the namespace is explicit)."""
    namespace, _, value = identifier.partition(":")
    if namespace not in _NAMESPACES or not value:
        raise ValueError("expected <TH-PID|TH-JUR|PASSPORT>:<value>")
    return party_pb2.PartyIdentifier(namespace=_NAMESPACES[namespace], value=value)


class CitizenRecord(Protocol):
    """What the demo knows about a synthetic citizen (``SyntheticPopulation.people[i]``)."""

    identifier: str
    given_name_th: str
    family_name_th: str
    given_name_en: str
    family_name_en: str
    birth_date: str
    card_laser_code: str
    document_expiry: str


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int
    scope: str


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def totp_now(secret: bytes, at: float | None = None) -> str:
    """The current RFC 6238 code (SHA-1, 6 digits, 30 s) for an enrolled secret."""
    step = int((time.time() if at is None else at) // 30)
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return str((struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**6).zfill(6)


def _secret_from_uri(uri: str) -> bytes:
    b32 = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    return base64.b32decode(b32 + "=" * (-len(b32) % 8))


class MachineKey:
    """An ES256 key pair for private_key_jwt client authentication (RFC 7523)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None,
                 kid: str = "k1") -> None:
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        self.kid = kid

    @property
    def jwks_json(self) -> str:
        jwk = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, alg="ES256", use="sig")
        return json.dumps({"keys": [jwk]})

    def assertion(self, client_id: str, audience: str) -> str:
        """A single-use client assertion for ``audience`` (the issuer or its token endpoint)."""
        now = int(time.time())
        return jwt.encode({"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
                           "exp": now + 60, "jti": uuid.uuid4().hex}, self.private_key,
                          algorithm="ES256", headers={"kid": self.kid})


class IdentityClient:
    """gRPC client of every identity service. ``issuer`` is needed for client assertions
    (read from the JWKS-serving service's discovery, or given)."""

    def __init__(self, channel: grpc.Channel, *, issuer: str, deadline: float = _DEADLINE
                 ) -> None:
        self.issuer = issuer.rstrip("/")
        self._deadline = deadline
        self.proofing = proofing_grpc.ProofingServiceStub(channel)
        self.authn = auth_grpc.AuthenticationServiceStub(channel)
        self.oidc = oidc_grpc.OidcServiceStub(channel)
        self.clients = clients_grpc.ClientServiceStub(channel)
        self.representation = rep_grpc.RepresentationServiceStub(channel)

    def call(self, method: Callable[..., T], request: Any, token: str = "") -> T:
        """Invoke ``method`` with a deadline (and bearer token); raises ``EgovError``."""
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            return method(request, timeout=self._deadline, metadata=metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    # -------------------------------------------------------------- machine clients
    def client_credentials_token(self, client_id: str, key: MachineKey, scope: str = "") -> str:
        response = self.call(self.oidc.Token, oidc_pb.TokenRequest(
            grant_type="client_credentials", client_id=client_id,
            client_assertion=key.assertion(client_id, self.issuer + "/token"),
            client_assertion_type=CLIENT_ASSERTION_TYPE, scope=scope))
        return str(response.access_token)

    def register_client(self, admin_token: str, *, client_id: str, client_name: str,
                        grant_types: Sequence[str], scopes: Sequence[str],
                        redirect_uris: Sequence[str] = (), key: MachineKey | None = None,
                        agency: str = "", pairwise_sector: str = "",
                        id_token_alg: str = "") -> clients_pb.Client:
        """Register a portal (no key: public client, PKCE) or a machine client (``key``:
        private_key_jwt). ``agency`` ("TH-JUR:...") becomes the ``agency`` claim;
        ``id_token_alg`` "RS256" asks for RS256 ID tokens (default ES256)."""
        client = clients_pb.Client(
            client_id=client_id, client_name=client_name, redirect_uris=list(redirect_uris),
            grant_types=list(grant_types), scopes=list(scopes),
            token_endpoint_auth_method="private_key_jwt" if key else "none",
            jwks_json=key.jwks_json if key else "",
            subject_type=(clients_pb.SUBJECT_TYPE_PAIRWISE if pairwise_sector
                          else clients_pb.SUBJECT_TYPE_PUBLIC),
            sector_identifier=pairwise_sector, id_token_signed_response_alg=id_token_alg)
        if agency:
            client.agency.CopyFrom(party(agency))
        reply: clients_pb.RegisterClientResponse = self.call(
            self.clients.RegisterClient, clients_pb.RegisterClientRequest(client=client),
            admin_token)
        return reply.client

    # -------------------------------------------------------------- proofing and enrolment
    def proof_citizen(self, token: str, citizen: CitizenRecord, *, target_ial: str = "2.3",
                      officer_id: str = "officer-demo") -> tuple[str, str]:
        """ID card chip read + in-person check (IAL 2.3 by default). Returns
        (person_id, enrolment_code). ``token`` needs scope ``identity:proofing``."""
        names = party_pb2.PartyNames(
            given_name_th=citizen.given_name_th, family_name_th=citizen.family_name_th,
            given_name_en=citizen.given_name_en, family_name_en=citizen.family_name_en)
        attributes = proofing_pb.PersonAttributes(names=names, birth_date=citizen.birth_date)
        session = self.call(self.proofing.StartProofing, proofing_pb.StartProofingRequest(
            subject=party(citizen.identifier), target_ial=target_ial), token).session
        evidence = [
            proofing_pb.Evidence(id_card_chip=proofing_pb.IdCardChipEvidence(
                national_id=citizen.identifier.split(":", 1)[1], attributes=attributes,
                laser_code=citizen.card_laser_code, expiry_date=citizen.document_expiry)),
            proofing_pb.Evidence(in_person=proofing_pb.InPersonEvidence(
                officer_id=officer_id, location="demo", attributes=attributes,
                photo_match=True)),
        ]
        for piece in evidence:
            self.call(self.proofing.SubmitEvidence, proofing_pb.SubmitEvidenceRequest(
                session_id=session.session_id, evidence=piece), token)
        done = self.call(self.proofing.CompleteProofing, proofing_pb.CompleteProofingRequest(
            session_id=session.session_id), token)
        return done.session.person_id, done.enrolment_code

    def enrol_password_and_totp(self, person_id: str, enrolment_code: str, username: str,
                                password: str, *, client_id: str) -> bytes:
        """Set the first password, enrol and confirm TOTP. Returns the TOTP secret."""
        self.call(self.authn.SetPassword, auth_pb.SetPasswordRequest(
            person_id=person_id, enrolment_code=enrolment_code, new_password=password,
            username=username))
        login = self.call(self.authn.Login, auth_pb.LoginRequest(
            client_id=client_id, username=username, password=password))
        uri = self.call(self.authn.EnrolTotp, auth_pb.EnrolTotpRequest(
            login_session_id=login.login_session_id)).otpauth_uri
        secret = _secret_from_uri(uri)
        self.call(self.authn.ConfirmTotp, auth_pb.ConfirmTotpRequest(
            login_session_id=login.login_session_id, code=totp_now(secret)))
        return secret

    # -------------------------------------------------------------- person tokens
    def login_and_get_tokens(self, client_id: str, redirect_uri: str, username: str,
                             password: str, *, totp_secret: bytes | None, scope: str,
                             nonce: str = "", claims: str = "", acr_values: str = "2",
                             totp_at: float | None = None) -> Tokens:
        """Login (AAL2 with ``totp_secret``), Authorize with PKCE, redeem the code."""
        login = self.call(self.authn.Login, auth_pb.LoginRequest(
            client_id=client_id, username=username, password=password,
            totp_code=totp_now(totp_secret, totp_at) if totp_secret else ""))
        verifier, challenge = pkce_pair()
        auth = self.call(self.oidc.Authorize, oidc_pb.AuthorizeRequest(
            login_session_id=login.login_session_id, client_id=client_id,
            redirect_uri=redirect_uri, scope=scope, nonce=nonce or secrets.token_urlsafe(8),
            code_challenge=challenge, code_challenge_method="S256", acr_values=acr_values,
            claims=claims))
        return self.redeem_code(client_id, auth.code, redirect_uri, verifier)

    def redeem_code(self, client_id: str, code: str, redirect_uri: str,
                    verifier: str) -> Tokens:
        r = self.call(self.oidc.Token, oidc_pb.TokenRequest(
            grant_type="authorization_code", client_id=client_id, code=code,
            redirect_uri=redirect_uri, code_verifier=verifier))
        return Tokens(r.access_token, r.id_token, r.refresh_token, r.expires_in, r.scope)

    def refresh(self, client_id: str, refresh_token: str) -> Tokens:
        r = self.call(self.oidc.Token, oidc_pb.TokenRequest(
            grant_type="refresh_token", client_id=client_id, refresh_token=refresh_token))
        return Tokens(r.access_token, r.id_token, r.refresh_token, r.expires_in, r.scope)

    def act_for(self, client_id: str, key: MachineKey, person_access_token: str,
                juristic_person: str, scope: str, audience: str = "") -> str:
        """RFC 8693 token exchange: an access token for the person acting for the company."""
        r = self.call(self.oidc.Token, oidc_pb.TokenRequest(
            grant_type=GRANT_TOKEN_EXCHANGE, client_id=client_id,
            client_assertion=key.assertion(client_id, self.issuer + "/token"),
            client_assertion_type=CLIENT_ASSERTION_TYPE, subject_token=person_access_token,
            subject_token_type=TOKEN_TYPE_ACCESS, act_for=juristic_person, scope=scope,
            audience=audience))
        return str(r.access_token)

    def jwks(self) -> dict[str, Any]:
        return dict(json.loads(self.call(self.oidc.GetJwks, oidc_pb.GetJwksRequest()).jwks_json))

    # -------------------------------------------------------------- juristic persons
    def register_juristic_person(self, admin_token: str, identifier: str,
                                 directors: Iterable[str] = (), *, agency: bool = False
                                 ) -> rep_pb.JuristicPerson:
        reply: rep_pb.RegisterJuristicPersonResponse = self.call(
            self.representation.RegisterJuristicPerson,
            rep_pb.RegisterJuristicPersonRequest(
                identifier=party(identifier),
                kind=(rep_pb.JURISTIC_PERSON_KIND_AGENCY if agency
                      else rep_pb.JURISTIC_PERSON_KIND_COMPANY),
                directors=[party(d) for d in directors]),
            admin_token)
        return reply.juristic_person

    def grant_representation(self, director_id_token: str, juristic_person: str,
                             representative: str, *, role: str, powers: Sequence[str],
                             portal_token: str,
                             valid_seconds: int = 86400) -> rep_pb.Representation:
        """A director's grant, through the portal the director logged in to: ``portal_token``
        is an access token issued to that portal (its own, or the director's), the client the
        ID token is for."""
        request = rep_pb.GrantRepresentationRequest(
            juristic_person=party(juristic_person), representative=party(representative),
            role=role, powers=list(powers), grantor_id_token=director_id_token)
        request.valid_until.FromSeconds(int(time.time()) + valid_seconds)
        reply: rep_pb.GrantRepresentationResponse = self.call(
            self.representation.GrantRepresentation, request, portal_token)
        return reply.representation


class DeviceKey:
    """The Digital ID app's device key: proves the device to ListPendingApprovals and
    DecideApproval (ES256 JWTs with a fresh ``iat`` and a single-use ``jti``)."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.device_id = ""

    @property
    def public_key_der(self) -> bytes:
        from cryptography.hazmat.primitives import serialization
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def proof(self, issuer: str, **claims: Any) -> str:
        return jwt.encode({"aud": issuer, "iat": int(time.time()), "jti": uuid.uuid4().hex,
                           **claims}, self.private_key, algorithm="ES256")


def register_device(identity: IdentityClient, login_session_id: str, device: DeviceKey,
                    name: str = "phone") -> str:
    """Register ``device`` for the person of an AAL2 login session; returns the device id."""
    device.device_id = identity.call(identity.authn.RegisterDevice, auth_pb.RegisterDeviceRequest(
        login_session_id=login_session_id, public_key_der=device.public_key_der,
        display_name=name)).device_id
    return device.device_id


def pending_approvals(identity: IdentityClient, device: DeviceKey
                      ) -> list[auth_pb.PendingApproval]:
    return list(identity.call(identity.authn.ListPendingApprovals,
                              auth_pb.ListPendingApprovalsRequest(
                                  device_id=device.device_id,
                                  device_proof=device.proof(identity.issuer))).approvals)


def decide(identity: IdentityClient, device: DeviceKey, auth_req_id: str, approve: bool) -> None:
    """Approve or deny a back-channel request on the device."""
    identity.call(identity.authn.DecideApproval, auth_pb.DecideApprovalRequest(
        device_id=device.device_id, auth_req_id=auth_req_id, approve=approve,
        device_proof=device.proof(identity.issuer, auth_req_id=auth_req_id, approve=approve)))


# ---------------------------------------------------------------------- demo steps

def write_bootstrap_clients(path: str, admin_client_id: str, admin_key: MachineKey) -> None:
    """Write the file for ``EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE``: one admin machine client
    (client_credentials, private_key_jwt) with scopes identity:admin and identity:proofing."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump([{"client_id": admin_client_id, "client_name": "Identity administration",
                    "grant_types": ["client_credentials"],
                    "scopes": ["identity:admin", "identity:proofing"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_json": admin_key.jwks_json}], f)


@dataclass(frozen=True, slots=True)
class DemoCitizen:
    person_id: str
    username: str
    totp_secret: bytes
    tokens: Tokens  # AAL2 tokens for the portal: ID token (acr urn:egov:aal:2, IAL 2.3)


def demo_citizen_at_ial_2_3(identity: IdentityClient, *, admin_client_id: str,
                            admin_key: MachineKey, citizen: CitizenRecord,
                            portal_client_id: str, redirect_uri: str, username: str,
                            password: str, register_portal: bool = True) -> DemoCitizen:
    """Story 1, identity part: register the portal, proof a synthetic citizen at IAL 2.3 (chip +
    officer), set password + TOTP, log in at AAL2 and get tokens with scopes
    ``openid profile identifier verified_claims keys:sign`` (the access token's audience then
    includes ``urn:egov:keys`` and it carries the ``identifier`` claim the keys service needs)."""
    scopes = ["openid", "profile", "identifier", "verified_claims", "keys:sign"]
    admin = identity.client_credentials_token(admin_client_id, admin_key,
                                              "identity:admin identity:proofing")
    if register_portal:
        identity.register_client(admin, client_id=portal_client_id, client_name="Citizen Portal",
                                 grant_types=["authorization_code", "refresh_token"],
                                 scopes=scopes, redirect_uris=[redirect_uri])
    person_id, code = identity.proof_citizen(admin, citizen, target_ial="2.3")
    secret = identity.enrol_password_and_totp(person_id, code, username, password,
                                              client_id=portal_client_id)
    tokens = identity.login_and_get_tokens(
        portal_client_id, redirect_uri, username, password, totp_secret=secret,
        scope=" ".join(scopes), acr_values="2",
        totp_at=time.time() + 30)  # the current step was spent confirming enrolment
    return DemoCitizen(person_id, username, secret, tokens)


def demo_agency_machine_client(identity: IdentityClient, *, admin_client_id: str,
                               admin_key: MachineKey, client_id: str, agency: str,
                               scopes: Sequence[str] = ("registry:issue", "keys:seal")
                               ) -> tuple[MachineKey, str]:
    """Story 2, identity part: register an agency back office as a machine client and get an
    access token (client credentials, private_key_jwt) with the ``agency`` claim."""
    admin = identity.client_credentials_token(admin_client_id, admin_key, "identity:admin")
    key = MachineKey()
    identity.register_client(admin, client_id=client_id, client_name=f"{agency} back office",
                             grant_types=["client_credentials"], scopes=list(scopes), key=key,
                             agency=agency)
    return key, identity.client_credentials_token(client_id, key, " ".join(scopes))
