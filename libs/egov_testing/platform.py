"""The whole platform as separate real processes, wired together and bootstrapped for the stories.

:func:`start_platform` starts identity, keys, registry, signing and the verify portal (``python -m
egov_<name>`` each) on loopback, SQLite and software keys, mutual TLS from one dev service CA,
each told where its peers are through its own settings (identity's issuer and JWKS URL for keys
and registry, keys and registry addresses for signing, the verify portal's URL as the registry's
verification URL base). It then bootstraps what DESIGN.md's three stories need:

- a portal: a public OIDC client (authorization code + PKCE, refresh) of identity;
- an agency: a juristic person (from the synthetic company register) registered in identity,
  its machine client (``private_key_jwt``, scopes ``keys:seal registry:issue``) and its e-seal
  credential in keys.

The actors' steps (proof a citizen, log in at AAL2, issue a credential, sign, verify, revoke)
are methods here; ``egov_testing.demo`` strings them into the stories, which the e2e tests and
``make demo`` both run. Everything talks to the services over their public contracts (gRPC,
and HTTP where the world expects it); the only service code imported is identity's synthetic
population, which plays the citizen's ID card and the officer's in-person check.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import secrets
import shutil
import struct
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov.identity.v1 import (
    authentication_pb2,
    authentication_pb2_grpc,
    oidc_pb2,
    oidc_pb2_grpc,
    proofing_pb2,
    proofing_pb2_grpc,
    representation_pb2,
    representation_pb2_grpc,
)
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.registry.v1 import registry_pb2
from egov.signing.v1 import signing_pb2, signing_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_clients.registry import RegistryClient
from egov_common.settings import DEFAULT_PORTS

from egov_testing.devpki import DevServiceCA
from egov_testing.processes import ServiceProcess, free_port

__all__ = [
    "AAL2_LOGIN",
    "Agency",
    "Citizen",
    "CitizenSession",
    "Platform",
    "SignedDocument",
    "flip_byte_in_signed_range",
    "pdfsig",
    "sample_pdf",
    "start_platform",
    "swap_page_after_signing",
    "totp_code",
]

#: Start order (peers first) and the services the platform consists of.
SERVICES = ("IDENTITY", "KEYS", "REGISTRY", "SIGNING", "VERIFY_PORTAL")
#: The certificate name our own calls present (the harness is a trusted back office).
HARNESS_CLIENT = "egov-testing"
PORTAL_CLIENT_ID = "egov-demo-portal"
AGENCY_CLIENT_ID = "egov-demo-agency"
#: What the portal asks for at login: the person's identifier and verified claims (IAL).
PORTAL_SCOPES = ("openid", "profile", "identifier", "verified_claims", "offline_access")
AAL2_LOGIN = "2"
AGENCY_SCOPES = ("keys:seal", "registry:issue")
BACKOFFICE_CLIENT_ID = "egov-demo-backoffice"
#: The back office proofs citizens at its desk and registers agencies.
BACKOFFICE_SCOPES = ("identity:proofing", "identity:admin")
#: The synthetic population identity generates (the same seed and size are passed to it).
POPULATION_SEED = 2569
POPULATION_SIZE = 200
_RPC_DEADLINE = 60.0
_CHUNK = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# PDFs


def sample_pdf(title: str, lines: Sequence[str] = (), *, pages: int = 2) -> bytes:
    """A small uncompressed PDF (Helvetica text) with ``pages`` pages, written by hand so its
    bytes are predictable: each page's text is in plain sight for tamper tests."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for number in range(1, pages + 1):
        text = [title, *lines, f"Page {number} of {pages}"]
        ops = [b"BT /F1 16 Tf 72 760 Td 20 TL"]
        for line in text:
            safe = line.encode("latin-1", "replace").replace(b"\\", b"\\\\")
            safe = safe.replace(b"(", b"\\(").replace(b")", b"\\)")
            ops.append(b"(" + safe + b") Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        contents = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_obj, font, contents)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, catalog, xref)
    )
    return out.getvalue()


def _byte_range(pdf: bytes) -> tuple[int, int, int, int]:
    start = pdf.rindex(b"/ByteRange")
    numbers = pdf[pdf.index(b"[", start) + 1 : pdf.index(b"]", start)].split()
    a, b, c, d = (int(n) for n in numbers[:4])
    return a, b, c, d


def flip_byte_in_signed_range(pdf: bytes, marker: bytes = b"Page 1 of") -> bytes:
    """The same PDF with one bit flipped inside the last signature's signed range: a letter of
    the page text (``marker``), so the file still parses and only the digest breaks."""
    a, b, _, _ = _byte_range(pdf)
    where = pdf.index(marker, a, a + b)
    flipped = bytearray(pdf)
    flipped[where] ^= 0x01  # "P" -> "Q"
    return bytes(flipped)


def swap_page_after_signing(pdf: bytes, text: str = "FORGED PAGE: amount 1,000,000 THB") -> bytes:
    """An incremental update (after the signatures) that replaces page 1's content stream.

    Byte ranges still match, so a viewer that only checks digests (poppler's ``pdfsig``) calls
    the signature valid; pyHanko's difference analysis sees a page changed after signing.
    """
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    first = writer.root["/Pages"]["/Kids"].raw_get(0)  # the reference, not the page
    page = first.get_object()
    stream = f"BT /F1 16 Tf 72 760 Td ({text}) Tj ET".encode("latin-1")
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=stream))
    writer.mark_update(first)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Authenticators


def totp_code(secret: bytes, step: int) -> str:
    """RFC 6238 TOTP code (HMAC-SHA1, 6 digits) for time step ``step`` (30 s steps).

    The citizen's authenticator app: written from the RFC, not imported from identity, so the
    stories check identity against an independent implementation."""
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def _totp_secret(otpauth_uri: str) -> bytes:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(otpauth_uri).query)
    secret = query["secret"][0].upper()
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _party(identifier: str) -> party_pb2.PartyIdentifier:
    namespace, _, value = identifier.partition(":")
    names = {
        "TH-PID": party_pb2.IDENTIFIER_NAMESPACE_TH_PID,
        "TH-JUR": party_pb2.IDENTIFIER_NAMESPACE_TH_JUR,
        "PASSPORT": party_pb2.IDENTIFIER_NAMESPACE_PASSPORT,
    }
    return party_pb2.PartyIdentifier(namespace=names[namespace], value=value)


# ---------------------------------------------------------------------------------------------
# Actors


@dataclass(frozen=True)
class Citizen:
    """A synthetic person as the civil registry knows them (their ID card, in effect)."""

    identifier: str  # TH-PID:<13 digits>
    given_name_th: str
    family_name_th: str
    given_name_en: str
    family_name_en: str
    birth_date: str
    card_laser_code: str
    card_expiry: str
    password: str = field(default_factory=lambda: "demo-" + secrets.token_urlsafe(12))

    @property
    def national_id(self) -> str:
        return self.identifier.partition(":")[2]

    def names(self) -> party_pb2.PartyNames:
        return party_pb2.PartyNames(
            given_name_th=self.given_name_th,
            family_name_th=self.family_name_th,
            given_name_en=self.given_name_en,
            family_name_en=self.family_name_en,
        )


@dataclass
class CitizenSession:
    """What a portal holds after an AAL2 login: the person's tokens."""

    citizen: Citizen
    person_id: str
    username: str
    totp_secret: bytes
    last_totp_step: int
    id_token: str
    access_token: str
    refresh_token: str
    achieved_ial: str
    claims: dict[str, Any]


@dataclass(frozen=True)
class MachineClient:
    """A confidential client of identity that authenticates with ``private_key_jwt``."""

    client_id: str
    key: ec.EllipticCurvePrivateKey
    key_id: str

    def assertion(self, audience: str) -> str:
        """A single-use client assertion (RFC 7523) for identity's token endpoint."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.key_id})

    def registration(self, name: str, scopes: Sequence[str], agency: str = "") -> dict[str, Any]:
        """Its entry in identity's bootstrap clients file."""
        entry: dict[str, Any] = {
            "client_id": self.client_id,
            "client_name": name,
            "grant_types": ["client_credentials"],
            "scopes": list(scopes),
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_json": json.dumps({"keys": [_jwk(self.key.public_key(), self.key_id)]}),
        }
        if agency:
            entry["agency"] = agency
        return entry


@dataclass(frozen=True)
class Agency:
    """The issuing agency: a juristic person with a machine client and an e-seal credential."""

    identifier: str  # TH-JUR:<13 digits>
    name_th: str
    name_en: str
    client_id: str
    client_key: ec.EllipticCurvePrivateKey
    key_id: str
    seal_credential_id: str = ""


@dataclass(frozen=True)
class SignedDocument:
    """A signed PDF and what signing said about it."""

    pdf: bytes
    result: signing_pb2.SignResult


# ---------------------------------------------------------------------------------------------
# The platform


@dataclass
class Platform:
    """Running services and the bootstrapped portal and agency. Create with
    :func:`start_platform`."""

    base_dir: Path
    processes: dict[str, ServiceProcess]
    ca: DevServiceCA
    agency: Agency
    backoffice: MachineClient
    portal_redirect_uri: str
    identity_issuer: str
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)
    _population: Any = None

    # -- plumbing ----------------------------------------------------------------------------

    def channel(self, name: str) -> grpc.Channel:
        """An mTLS channel to service ``name`` (``"KEYS"``) as the harness client."""
        name = name.upper()
        if name not in self._channels:
            self._channels[name] = self.processes[name].open_channel()
        return self._channels[name]

    @property
    def verify_portal_url(self) -> str:
        return self.processes["VERIFY_PORTAL"].http_url

    @property
    def keys_http_url(self) -> str:
        return self.processes["KEYS"].http_url

    def log_text(self, name: str) -> str:
        return self.processes[name.upper()].log_path.read_text("utf-8", "replace")

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def _population_source(self) -> Any:
        if self._population is None:
            # The authoritative source identity checks evidence against; the harness reads it
            # to hold the synthetic citizen's ID card. (egov_testing may import services.)
            from egov_identity.adapters.population import SyntheticPopulation

            self._population = SyntheticPopulation(POPULATION_SEED, POPULATION_SIZE)
        return self._population

    # -- trust anchors -----------------------------------------------------------------------

    def trust_service_info(self) -> keys_pb2.GetTrustServiceInfoResponse:
        stub = keys_pb2_grpc.KeysServiceStub(self.channel("KEYS"))
        reply: keys_pb2.GetTrustServiceInfoResponse = stub.GetTrustServiceInfo(
            keys_pb2.GetTrustServiceInfoRequest(), timeout=_RPC_DEADLINE
        )
        return reply

    def root_certificate(self) -> x509.Certificate:
        """The keys service's root CA: the one trust anchor of every validator here."""
        for ca in self.trust_service_info().certificates:
            if ca.role == "root":
                return x509.load_der_x509_certificate(ca.certificate_der)
        raise LookupError("keys publishes no root certificate")

    # -- citizen -----------------------------------------------------------------------------

    def synthetic_citizen(self, index: int = 0) -> Citizen:
        """The ``index``-th Thai person of the synthetic population (with an ID card)."""
        people = [p for p in self._population_source().people if p.identifier.startswith("TH-")]
        person = people[index]
        return Citizen(
            identifier=person.identifier,
            given_name_th=person.given_name_th,
            family_name_th=person.family_name_th,
            given_name_en=person.given_name_en,
            family_name_en=person.family_name_en,
            birth_date=person.birth_date,
            card_laser_code=person.card_laser_code,
            card_expiry=person.document_expiry,
        )

    def proof_citizen(self, citizen: Citizen, target_ial: str = "2.3") -> tuple[str, str, str]:
        """Identity proofing at ``target_ial``: the ID card chip read plus an officer's
        in-person check. Returns (person_id, enrolment code, achieved IAL)."""
        stub = proofing_pb2_grpc.ProofingServiceStub(self.channel("IDENTITY"))
        desk = self._backoffice_metadata()  # the proofing desk's token (identity:proofing)
        attributes = proofing_pb2.PersonAttributes(
            names=citizen.names(), birth_date=citizen.birth_date
        )
        started = stub.StartProofing(
            proofing_pb2.StartProofingRequest(
                subject=_party(citizen.identifier), target_ial=target_ial
            ),
            timeout=_RPC_DEADLINE,
            metadata=desk,
        )
        session_id = started.session.session_id
        evidence = [
            proofing_pb2.Evidence(
                id_card_chip=proofing_pb2.IdCardChipEvidence(
                    national_id=citizen.national_id,
                    attributes=attributes,
                    laser_code=citizen.card_laser_code,
                    expiry_date=citizen.card_expiry,
                )
            ),
            proofing_pb2.Evidence(
                in_person=proofing_pb2.InPersonEvidence(
                    officer_id="officer-0001",
                    location="District office, Bang Rak",
                    attributes=attributes,
                    photo_match=True,
                )
            ),
        ]
        for item in evidence:
            stub.SubmitEvidence(
                proofing_pb2.SubmitEvidenceRequest(session_id=session_id, evidence=item),
                timeout=_RPC_DEADLINE,
                metadata=desk,
            )
        done = stub.CompleteProofing(
            proofing_pb2.CompleteProofingRequest(session_id=session_id),
            timeout=_RPC_DEADLINE,
            metadata=desk,
        )
        return done.session.person_id, done.enrolment_code, done.session.achieved_ial

    def enrol_citizen(self, citizen: Citizen, *, over_http: bool = False) -> CitizenSession:
        """Proof at IAL 2.3, set a password, enrol and confirm TOTP, then log in at AAL2
        through the portal (authorization code + PKCE, over gRPC or, with ``over_http``, over
        identity's OIDC HTTP endpoints). Returns the portal's session."""
        person_id, enrolment_code, ial = self.proof_citizen(citizen)
        auth = authentication_pb2_grpc.AuthenticationServiceStub(self.channel("IDENTITY"))
        username = auth.SetPassword(
            authentication_pb2.SetPasswordRequest(
                person_id=person_id, enrolment_code=enrolment_code, new_password=citizen.password
            ),
            timeout=_RPC_DEADLINE,
        ).username
        first = auth.Login(
            authentication_pb2.LoginRequest(
                client_id=PORTAL_CLIENT_ID, username=username, password=citizen.password
            ),
            timeout=_RPC_DEADLINE,
        )
        uri = auth.EnrolTotp(
            authentication_pb2.EnrolTotpRequest(login_session_id=first.login_session_id),
            timeout=_RPC_DEADLINE,
        ).otpauth_uri
        secret = _totp_secret(uri)
        step = int(time.time() // 30)
        auth.ConfirmTotp(
            authentication_pb2.ConfirmTotpRequest(
                login_session_id=first.login_session_id, code=totp_code(secret, step)
            ),
            timeout=_RPC_DEADLINE,
        )
        session = CitizenSession(citizen, person_id, username, secret, step, "", "", "", ial, {})
        return self.login_aal2_http(session) if over_http else self.login_aal2(session)

    def login_aal2(self, session: CitizenSession) -> CitizenSession:
        """Password + TOTP login, then the portal's authorization code flow with PKCE.

        Each TOTP code is accepted once; the next step's code is within the verifier's window,
        so no waiting for the clock.
        """
        auth = authentication_pb2_grpc.AuthenticationServiceStub(self.channel("IDENTITY"))
        step = max(session.last_totp_step + 1, int(time.time() // 30))
        login = auth.Login(
            authentication_pb2.LoginRequest(
                client_id=PORTAL_CLIENT_ID,
                username=session.username,
                password=session.citizen.password,
                totp_code=totp_code(session.totp_secret, step),
            ),
            timeout=_RPC_DEADLINE,
        )
        session.last_totp_step = step
        oidc = oidc_pb2_grpc.OidcServiceStub(self.channel("IDENTITY"))
        verifier, challenge = _pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        authorized = oidc.Authorize(
            oidc_pb2.AuthorizeRequest(
                login_session_id=login.login_session_id,
                client_id=PORTAL_CLIENT_ID,
                redirect_uri=self.portal_redirect_uri,
                scope=" ".join(PORTAL_SCOPES),
                state=state,
                nonce=nonce,
                code_challenge=challenge,
                code_challenge_method="S256",
                acr_values=AAL2_LOGIN,
            ),
            timeout=_RPC_DEADLINE,
        )
        redirect = urllib.parse.parse_qs(urllib.parse.urlsplit(authorized.redirect_to).query)
        if authorized.redirect_to and redirect.get("state") != [state]:
            raise AssertionError("the authorization response lost the portal's state")
        tokens = oidc.Token(
            oidc_pb2.TokenRequest(
                grant_type="authorization_code",
                client_id=PORTAL_CLIENT_ID,
                code=authorized.code,
                redirect_uri=self.portal_redirect_uri,
                code_verifier=verifier,
            ),
            timeout=_RPC_DEADLINE,
        )
        claims = jwt.decode(tokens.id_token, options={"verify_signature": False})
        if claims.get("nonce") != nonce:
            raise AssertionError("the ID token does not carry the portal's nonce")
        session.id_token = tokens.id_token
        session.access_token = tokens.access_token
        session.refresh_token = tokens.refresh_token
        session.claims = claims
        return session

    def login_aal2_http(self, session: CitizenSession) -> CitizenSession:
        """The same login as an unmodified OIDC client does it: discovery, the authorization
        endpoint's login form (password + TOTP), the redirect with code and state, the token
        endpoint with the PKCE verifier; the ID token is checked with identity's JWKS by the
        shared fail-closed verifier (``egov_pki.tokens``)."""
        from egov_pki.tokens import HttpJwks, TokenVerifier

        with httpx.Client(timeout=_RPC_DEADLINE, follow_redirects=False) as http:
            discovery = http.get(self.identity_issuer + "/.well-known/openid-configuration")
            discovery.raise_for_status()
            endpoints = discovery.json()
            verifier, challenge = _pkce_pair()
            state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
            params = {
                "response_type": "code",
                "client_id": PORTAL_CLIENT_ID,
                "redirect_uri": self.portal_redirect_uri,
                "scope": " ".join(PORTAL_SCOPES),
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "acr_values": AAL2_LOGIN,
            }
            form_page = http.get(endpoints["authorization_endpoint"], params=params)
            if form_page.status_code != 200 or "password" not in form_page.text:
                raise AssertionError(f"no login form: {form_page.status_code}")
            step = max(session.last_totp_step + 1, int(time.time() // 30))
            answer = http.post(
                endpoints["authorization_endpoint"],
                data={
                    **params,
                    "username": session.username,
                    "password": session.citizen.password,
                    "totp_code": totp_code(session.totp_secret, step),
                },
            )
            session.last_totp_step = step
            if answer.status_code != 302:
                raise AssertionError(f"login refused: {answer.status_code} {answer.text[:200]}")
            redirect = urllib.parse.urlsplit(answer.headers["location"])
            query = urllib.parse.parse_qs(redirect.query)
            expected = urllib.parse.urlsplit(self.portal_redirect_uri)
            if (redirect.netloc, redirect.path) != (expected.netloc, expected.path):
                raise AssertionError(f"redirected elsewhere: {answer.headers['location']}")
            if query.get("state") != [state] or "code" not in query:
                raise AssertionError(f"no code for our state: {answer.headers['location']}")
            tokens = http.post(
                endpoints["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "client_id": PORTAL_CLIENT_ID,
                    "code": query["code"][0],
                    "redirect_uri": self.portal_redirect_uri,
                    "code_verifier": verifier,
                },
            )
            tokens.raise_for_status()
            body = tokens.json()
        checked = TokenVerifier(
            HttpJwks(endpoints["jwks_uri"]),
            issuer=endpoints["issuer"],
            audiences=[PORTAL_CLIENT_ID],
        ).verify(body["id_token"])
        if checked.claims.get("nonce") != nonce:
            raise AssertionError("the ID token does not carry the portal's nonce")
        session.id_token = body["id_token"]
        session.access_token = body["access_token"]
        session.refresh_token = body.get("refresh_token", "")
        session.claims = dict(checked.claims)
        return session

    def fresh_id_token(self, session: CitizenSession) -> str:
        """A new ID token from the refresh token (same login, so the same auth_time)."""
        oidc = oidc_pb2_grpc.OidcServiceStub(self.channel("IDENTITY"))
        tokens = oidc.Token(
            oidc_pb2.TokenRequest(
                grant_type="refresh_token",
                client_id=PORTAL_CLIENT_ID,
                refresh_token=session.refresh_token,
            ),
            timeout=_RPC_DEADLINE,
        )
        session.refresh_token = tokens.refresh_token or session.refresh_token
        if tokens.id_token:
            session.id_token = tokens.id_token
            session.claims = jwt.decode(tokens.id_token, options={"verify_signature": False})
        return session.id_token

    def issue_citizen_credential(self, session: CitizenSession) -> keys_pb2.Credential:
        """keys.CreateCredential for the citizen, proven by their ID token."""
        stub = keys_pb2_grpc.KeysServiceStub(self.channel("KEYS"))
        reply = stub.CreateCredential(
            keys_pb2.CreateCredentialRequest(
                idempotency_key=secrets.token_hex(16),
                owner=_party(session.citizen.identifier),
                kind=keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON,
                key_algorithm=crypto_pb2.KEY_ALGORITHM_ECDSA_P256,
                names=session.citizen.names(),
                authorization_proof=session.id_token,
            ),
            timeout=_RPC_DEADLINE,
        )
        credential: keys_pb2.Credential = reply.credential
        return credential

    def revoke_credential(
        self,
        credential_id: str,
        proof: str,
        reason: keys_pb2.CertificateRevocationReason = (
            keys_pb2.CERTIFICATE_REVOCATION_REASON_KEY_COMPROMISE
        ),
    ) -> keys_pb2.Credential:
        stub = keys_pb2_grpc.KeysServiceStub(self.channel("KEYS"))
        reply = stub.RevokeCredential(
            keys_pb2.RevokeCredentialRequest(
                credential_id=credential_id, reason=reason, authorization_proof=proof
            ),
            timeout=_RPC_DEADLINE,
        )
        credential: keys_pb2.Credential = reply.credential
        return credential

    # -- agency ------------------------------------------------------------------------------

    def agency_token(self, scopes: Sequence[str] = AGENCY_SCOPES) -> str:
        """An access token of the agency's machine client (client_credentials)."""
        agency = self.agency
        return self.client_credentials(
            MachineClient(agency.client_id, agency.client_key, agency.key_id), scopes
        )

    def backoffice_token(self, scopes: Sequence[str] = BACKOFFICE_SCOPES) -> str:
        """An access token of the back office (identity proofing desk and administration)."""
        return self.client_credentials(self.backoffice, scopes)

    def client_credentials(self, client: MachineClient, scopes: Sequence[str]) -> str:
        """identity's token endpoint (gRPC), grant client_credentials, the client authenticated
        by a ``private_key_jwt`` assertion (RFC 7523)."""
        oidc = oidc_pb2_grpc.OidcServiceStub(self.channel("IDENTITY"))
        tokens = oidc.Token(
            oidc_pb2.TokenRequest(
                grant_type="client_credentials",
                client_id=client.client_id,
                client_assertion=client.assertion(self.identity_issuer + "/token"),
                client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                scope=" ".join(scopes),
            ),
            timeout=_RPC_DEADLINE,
        )
        token: str = tokens.access_token
        return token

    def _backoffice_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.backoffice_token()}"),)

    def registry_client(self, token: str | None = None) -> RegistryClient:
        """egov_clients.registry over our mTLS channel; ``token`` for issuer calls."""
        return RegistryClient(self.channel("REGISTRY"), token=token)

    def revoke_registered_document(
        self, document_id: str, reason_text: str
    ) -> registry_pb2.Document:
        with self.registry_client(self.agency_token()) as registry:
            return registry.revoke(
                document_id, registry_pb2.REVOCATION_REASON_ISSUED_IN_ERROR, reason_text
            )

    # -- signing -----------------------------------------------------------------------------

    def sign(
        self, pdf: bytes, options: signing_pb2.SignOptions, *, bearer: str = ""
    ) -> SignedDocument:
        """signing.SignDocument: options, then the PDF in chunks; result, then the signed PDF."""
        stub = signing_pb2_grpc.SigningServiceStub(self.channel("SIGNING"))

        def requests() -> Iterator[signing_pb2.SignDocumentRequest]:
            yield signing_pb2.SignDocumentRequest(options=options)
            for start in range(0, len(pdf), _CHUNK):
                yield signing_pb2.SignDocumentRequest(chunk=pdf[start : start + _CHUNK])

        metadata = (("authorization", f"Bearer {bearer}"),) if bearer else ()
        result: signing_pb2.SignResult | None = None
        out = io.BytesIO()
        for reply in stub.SignDocument(requests(), timeout=_RPC_DEADLINE * 2, metadata=metadata):
            if reply.HasField("result"):
                result = reply.result
            else:
                out.write(reply.chunk)
        if result is None:
            raise AssertionError("SignDocument answered without a result")
        return SignedDocument(out.getvalue(), result)

    def verify(
        self, pdf: bytes, *, language: str = "en", etsi_xml: bool = True
    ) -> signing_pb2.VerifyDocumentResponse:
        """signing.VerifyDocument: the validation report (and its ETSI XML and summary)."""
        stub = signing_pb2_grpc.SigningServiceStub(self.channel("SIGNING"))

        def requests() -> Iterator[signing_pb2.VerifyDocumentRequest]:
            yield signing_pb2.VerifyDocumentRequest(
                options=signing_pb2.VerifyOptions(language=language, include_etsi_xml=etsi_xml)
            )
            for start in range(0, len(pdf), _CHUNK):
                yield signing_pb2.VerifyDocumentRequest(chunk=pdf[start : start + _CHUNK])

        reply: signing_pb2.VerifyDocumentResponse = stub.VerifyDocument(
            requests(), timeout=_RPC_DEADLINE * 2
        )
        return reply

    def audit_events(self, credential_id: str) -> list[keys_pb2.AuditEvent]:
        """keys' audit log entries about one credential (the harness is an audit caller)."""
        stub = keys_pb2_grpc.KeysServiceStub(self.channel("KEYS"))
        events: list[keys_pb2.AuditEvent] = []
        token = ""
        while True:
            reply = stub.ListAuditEvents(
                keys_pb2.ListAuditEventsRequest(
                    credential_id=credential_id, page_size=1000, page_token=token
                ),
                timeout=_RPC_DEADLINE,
            )
            events.extend(reply.events)
            token = reply.next_page_token
            if not token:
                return events


# ---------------------------------------------------------------------------------------------
# Independent validators


def pyhanko_validate(pdf: bytes, root: x509.Certificate) -> list[Any]:
    """pyHanko's own validator, called directly (not through our service), every signature
    against ``root`` as the only trust anchor, revocation fetched on line (hard-fail)."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    anchor = asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))
    reader = PdfFileReader(io.BytesIO(pdf))
    statuses = []
    for signature in reader.embedded_regular_signatures:
        context = ValidationContext(
            trust_roots=[anchor], allow_fetching=True, revocation_mode="hard-fail"
        )
        statuses.append(validate_pdf_signature(signature, context))
    return statuses


def nss_database(directory: Path, root: x509.Certificate) -> Path:
    """An NSS database holding ``root`` as a trusted CA (``certutil -N``, ``certutil -A``)."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = directory / "egov-root.pem"
    pem.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    if not (directory / "cert9.db").exists():
        subprocess.run(
            ["certutil", "-N", "--empty-password", "-d", f"sql:{directory}"],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [
            "certutil",
            "-A",
            "-n",
            "egov-root",
            "-t",
            "CT,C,C",
            "-i",
            str(pem),
            "-d",
            f"sql:{directory}",
        ],
        check=True,
        capture_output=True,
    )
    return directory


def pdfsig(pdf: bytes, work_dir: Path, nss_dir: Path | None = None) -> str:
    """poppler's ``pdfsig`` output for ``pdf`` (with ``nss_dir`` as its certificate store)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"pdfsig-{secrets.token_hex(4)}.pdf"
    path.write_bytes(pdf)
    command = ["pdfsig"]
    if nss_dir is not None:
        command += ["-nssdir", f"sql:{nss_dir}"]
    completed = subprocess.run(
        [*command, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    path.unlink(missing_ok=True)
    return completed.stdout + completed.stderr


def qpdf_check(pdf: bytes, work_dir: Path) -> tuple[int, str]:
    path = work_dir / f"qpdf-{secrets.token_hex(4)}.pdf"
    path.write_bytes(pdf)
    completed = subprocess.run(
        ["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    path.unlink(missing_ok=True)
    return completed.returncode, completed.stdout + completed.stderr


# ---------------------------------------------------------------------------------------------
# Start-up and bootstrap


def _agency_from_register() -> tuple[str, str, str]:
    from egov_identity.adapters.population import SyntheticPopulation

    company = SyntheticPopulation(POPULATION_SEED, POPULATION_SIZE).companies[0]
    # The synthetic company register stands in for the agency's registration; the agency's
    # own names are what its seal certificate and the registry show.
    return (
        company.identifier,
        "กรมพัฒนาธุรกิจการค้า (สาธิต)",
        "Department of Business Development (demo)",
    )


def _jwk(public_key: ec.EllipticCurvePublicKey, kid: str) -> dict[str, Any]:
    from jwt.algorithms import ECAlgorithm

    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(public_key))
    jwk.update(kid=kid, alg="ES256", use="sig")
    return jwk


def _ports(default_ports: bool) -> dict[str, tuple[int | None, int | None]]:
    if default_ports:
        return dict(DEFAULT_PORTS)
    out: dict[str, tuple[int | None, int | None]] = {}
    for name, (grpc_port, http_port) in DEFAULT_PORTS.items():
        out[name] = (
            free_port() if grpc_port is not None else None,
            free_port() if http_port is not None else None,
        )
    return out


def plan_platform(
    base_dir: Path, *, default_ports: bool = False, host: str = "127.0.0.1"
) -> tuple[dict[str, ServiceProcess], Agency, MachineClient, str]:
    """The five processes with their settings (not started), the agency, the back office's
    client and the portal's redirect URI. Everything lives under ``base_dir`` (data, logs,
    the service CA)."""
    ports = _ports(default_ports)
    ca_dir = base_dir / "service-ca"

    def grpc_address(name: str) -> str:
        return f"{host}:{ports[name][0]}"

    def http_url(name: str) -> str:
        return f"http://{host}:{ports[name][1]}"

    issuer = http_url("IDENTITY")
    jwks_url = issuer + "/jwks"
    portal_url = http_url("VERIFY_PORTAL")
    redirect_uri = f"http://{host}:{free_port()}/callback"

    agency_id, name_th, name_en = _agency_from_register()
    agency_key = ec.generate_private_key(ec.SECP256R1())
    key_id = "agency-key-1"
    agency = Agency(agency_id, name_th, name_en, AGENCY_CLIENT_ID, agency_key, key_id)
    backoffice = MachineClient(
        BACKOFFICE_CLIENT_ID, ec.generate_private_key(ec.SECP256R1()), "backoffice-key-1"
    )
    clients = [
        {
            "client_id": PORTAL_CLIENT_ID,
            "client_name": "Citizen Portal (demo)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "scopes": list(PORTAL_SCOPES),
            "token_endpoint_auth_method": "none",
        },
        MachineClient(AGENCY_CLIENT_ID, agency_key, key_id).registration(
            name_en, AGENCY_SCOPES, agency_id
        ),
        backoffice.registration("Back office (demo)", BACKOFFICE_SCOPES),
    ]
    identity_dir = base_dir / "identity"
    identity_dir.mkdir(parents=True, exist_ok=True)
    clients_file = identity_dir / "bootstrap-clients.json"
    clients_file.write_text(json.dumps(clients, ensure_ascii=False, indent=2))

    peers = {f"EGOV_{n}_ADDRESS": grpc_address(n) for n in SERVICES if ports[n][0] is not None}
    env: dict[str, dict[str, str]] = {
        "IDENTITY": {
            "EGOV_IDENTITY_ISSUER": issuer,
            "EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE": str(clients_file),
            "EGOV_IDENTITY_POPULATION_SEED": str(POPULATION_SEED),
            "EGOV_IDENTITY_POPULATION_SIZE": str(POPULATION_SIZE),
        },
        "KEYS": {
            "EGOV_KEYS_SOFTWARE_KEK": base64.b64encode(secrets.token_bytes(32)).decode(),
            "EGOV_KEYS_KEY_BACKEND": "software",
            "EGOV_KEYS_IDENTITY_ISSUER": issuer,
            "EGOV_KEYS_IDENTITY_JWKS_URL": jwks_url,
            # ID tokens are for the portal (aud = its client id); agency tokens for keys.
            "EGOV_KEYS_TOKEN_AUDIENCES": f"urn:egov:keys,{PORTAL_CLIENT_ID}",
            "EGOV_KEYS_SIGN_CALLERS": "signing",
            "EGOV_KEYS_AUDIT_CALLERS": HARNESS_CLIENT,
        },
        "REGISTRY": {
            "EGOV_REGISTRY_TOKEN_ISSUER": issuer,
            "EGOV_REGISTRY_TOKEN_JWKS_URL": jwks_url,
            "EGOV_REGISTRY_VERIFICATION_URL_BASE": portal_url + "/verify/",
        },
        "SIGNING": {},
        "VERIFY_PORTAL": {"EGOV_VERIFY_PORTAL_PUBLIC_URL": portal_url},
    }
    processes: dict[str, ServiceProcess] = {}
    for name in SERVICES:
        grpc_port, http_port = ports[name]
        service_env = {
            **peers,
            **env[name],
            f"EGOV_{name}_TLS_MODE": "mtls",
            f"EGOV_{name}_TLS_CA_DIR": str(ca_dir),
            f"EGOV_{name}_LOG_LEVEL": "INFO",
        }
        processes[name] = ServiceProcess(
            module=f"egov_{name.lower()}",
            name=name,
            data_dir=base_dir / name.lower(),
            log_path=base_dir / "logs" / f"{name.lower()}.log",
            grpc_port=grpc_port,
            http_port=http_port,
            env=service_env,
            host=host,
        )
    return processes, agency, backoffice, redirect_uri


def _bootstrap_agency(platform: Platform) -> Agency:
    """Register the agency in identity and give it an e-seal credential in keys."""
    agency = platform.agency
    stub = representation_pb2_grpc.RepresentationServiceStub(platform.channel("IDENTITY"))
    stub.RegisterJuristicPerson(
        representation_pb2.RegisterJuristicPersonRequest(
            identifier=_party(agency.identifier),
            kind=representation_pb2.JURISTIC_PERSON_KIND_AGENCY,
            names=party_pb2.PartyNames(
                organization_name_th=agency.name_th, organization_name_en=agency.name_en
            ),
        ),
        timeout=_RPC_DEADLINE,
        metadata=platform._backoffice_metadata(),
    )
    token = platform.agency_token()
    keys = keys_pb2_grpc.KeysServiceStub(platform.channel("KEYS"))
    reply = keys.CreateCredential(
        keys_pb2.CreateCredentialRequest(
            idempotency_key=f"seal-{agency.identifier}",
            owner=_party(agency.identifier),
            kind=keys_pb2.CREDENTIAL_KIND_ELECTRONIC_SEAL,
            key_algorithm=crypto_pb2.KEY_ALGORITHM_ECDSA_P256,
            names=party_pb2.PartyNames(
                organization_name_th=agency.name_th, organization_name_en=agency.name_en
            ),
        ),
        timeout=_RPC_DEADLINE,
        metadata=(("authorization", f"Bearer {token}"),),
    )
    return dataclasses.replace(agency, seal_credential_id=reply.credential.credential_id)


@contextlib.contextmanager
def start_platform(
    base_dir: Path, *, default_ports: bool = False, timeout: float = 90.0
) -> Iterator[Platform]:
    """Start every service, wait for health (polled, never slept on), bootstrap the portal
    and the agency, yield the :class:`Platform`; stop everything with SIGTERM on exit.

    ``base_dir`` must be new or empty (every run makes its own keys, CA and client keys).
    ``default_ports``: the ports of DESIGN.md (8080 for the verify portal ...) instead of free
    ones. Raises ``ServiceFailedToStart`` (with the log tail) when a service does not come up.
    """
    base_dir = base_dir.resolve()
    if any((base_dir / name.lower()).exists() for name in SERVICES if name != "IDENTITY"):
        # Keys' KEK, the agency's client key and the URLs in certificates are made per run.
        raise FileExistsError(f"{base_dir} holds an earlier platform: use a fresh directory")
    processes, agency, backoffice, redirect_uri = plan_platform(
        base_dir, default_ports=default_ports
    )
    started: list[ServiceProcess] = []
    platform = Platform(
        base_dir=base_dir,
        processes=processes,
        ca=DevServiceCA(base_dir / "service-ca"),
        agency=agency,
        backoffice=backoffice,
        portal_redirect_uri=redirect_uri,
        identity_issuer=processes["IDENTITY"].http_url,
    )
    try:
        # Create the CA once before five processes race to create it.
        platform.ca.material(HARNESS_CLIENT)
        first, then = SERVICES[:3], SERVICES[3:]
        for name in first:
            processes[name].start()
            started.append(processes[name])
        for name in first:
            processes[name].wait_healthy(timeout)
        # signing's trust anchor is keys' root, handed over as a file like a deployment would.
        anchor = base_dir / "trust-anchors" / "egov-root.pem"
        anchor.parent.mkdir(parents=True, exist_ok=True)
        anchor.write_bytes(platform.root_certificate().public_bytes(serialization.Encoding.PEM))
        processes["SIGNING"].env = {
            **processes["SIGNING"].env,
            "EGOV_SIGNING_TRUST_ANCHOR_FILES": json.dumps([str(anchor)]),
        }
        for name in then:
            processes[name].start()
            started.append(processes[name])
        for name in then:
            processes[name].wait_healthy(timeout)
        platform.agency = _bootstrap_agency(platform)
        yield platform
    finally:
        platform.close()
        for process in reversed(started):
            process.stop()


def which_missing(tools: Sequence[str] = ("pdfsig", "certutil", "qpdf")) -> list[str]:
    """External validators not on PATH (tests skip the independent checks that need them)."""
    return [tool for tool in tools if shutil.which(tool) is None]
