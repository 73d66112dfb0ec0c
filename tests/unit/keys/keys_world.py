"""Test world for the keys service: a local identity (ES256 JWKS, tokens with identity's claims)
and an in-process keys runtime on SQLite. Integration tests import it too."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.auth import Caller, CallerKind
from egov_common.clock import FixedClock
from egov_keys.adapters.identity import IdentityProofVerifier
from egov_keys.credentials import OwnerNames
from egov_keys.runtime import KeysRuntime, build_runtime
from egov_keys.settings import KeysSettings
from egov_pki.identifiers import check_digit
from egov_pki.tokens import StaticJwks
from jwt.algorithms import ECAlgorithm

ISSUER = "https://identity.test"
AUDIENCE = "citizen-portal"
SIGNING = Caller(CallerKind.SERVICE, "signing", peer_service="signing")
ADMIN = Caller(CallerKind.CLIENT, "ops-console", frozenset({"keys:admin"}))
ANON = Caller(CallerKind.ANONYMOUS)


def thai_number(prefix12: str) -> str:
    return prefix12 + str(check_digit(prefix12))


PERSON_ID = thai_number("110170023070")
OTHER_PERSON_ID = thai_number("310050012345")
COMPANY_ID = thai_number("010553601234")
AGENCY_ID = thai_number("099400015999")
PERSON_NAMES = OwnerNames("สมชาย", "ใจดี", "Somchai", "Jaidee")
#: What identity verifies of the person and puts in an ID token's verified_claims.claims: the
#: English names and the birth date (identity's _userinfo_claims).
VERIFIED_NAMES: dict[str, str] = {
    "given_name": "Somchai",
    "family_name": "Jaidee",
    "birthdate": "1980-01-01",
}
#: The same with the Thai names, language-tagged (OIDC Core 5.2), as keys reads them once
#: identity verifies them.
VERIFIED_NAMES_TH: dict[str, str] = {
    **VERIFIED_NAMES,
    "given_name#th": "สมชาย",
    "family_name#th": "ใจดี",
}
COMPANY_NAMES = OwnerNames(organization_th="บริษัท เอซีเอ็มอี จำกัด", organization_en="ACME Co., Ltd.")
#: The company's names in the representation claim, as keys reads them once identity puts them
#: there (identity's representation tokens carry no names today).
COMPANY_CLAIMS: dict[str, str] = {
    "organization_name": "ACME Co., Ltd.",
    "organization_name#th": "บริษัท เอซีเอ็มอี จำกัด",
}
AGENCY_NAMES = OwnerNames(
    organization_th="กรมการปกครอง", organization_en="Department of Provincial Administration"
)


def new_kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class LocalIdentity:
    """Signs tokens with identity's claim layout; serves its JWKS (statically or over HTTP)."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    kid: str = "test-key-1"
    now: Any = time.time

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg="ES256", use="sig")
        return {"keys": [jwk]}

    def token(self, sub: str = "user-1", *, typ: str = "JWT", **claims: Any) -> str:
        """An ID token by default; ``typ="at+jwt"`` for an access token (RFC 9068), the only
        kind a service takes as a bearer token."""
        now = self.now()
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "acr": "urn:egov:aal:2",
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.key, algorithm="ES256",
                          headers={"kid": self.kid, "typ": typ})

    def person(
        self,
        number: str = PERSON_ID,
        *,
        ial: str = "2.3",
        verified_names: dict[str, str] | None = None,
        **claims: Any,
    ) -> str:
        """The person's ID token with verified_claims as identity writes it (``verified_names``:
        its ``claims`` member; :data:`VERIFIED_NAMES` by default)."""
        return self.token(
            sub=f"sub-{number[-4:]}",
            identifier=f"TH-PID:{number}",
            verified_claims={
                "verification": {"trust_framework": "th_dopa", "assurance_level": ial},
                "claims": VERIFIED_NAMES if verified_names is None else verified_names,
            },
            **claims,
        )

    def representative(
        self,
        company: str = COMPANY_ID,
        powers: tuple[str, ...] = ("sign",),
        *,
        names: dict[str, str] | None = None,
        **claims: Any,
    ) -> str:
        """A representation token as identity's token exchange issues it (an access token);
        ``names``: organisation name claims to add to its representation claim."""
        return self.token(
            typ="at+jwt",
            sub="sub-rep",
            identifier=f"TH-PID:{OTHER_PERSON_ID}",
            act={"sub": "sub-rep"},
            representation={
                "juristic_person": f"TH-JUR:{company}",
                "role": "director",
                "powers": list(powers),
                "grant_id": "grant-1",
                **(names or {}),
            },
            **claims,
        )

    def agency_client(self, agency: str = AGENCY_ID, scope: str = "keys:seal") -> str:
        return self.token(
            typ="at+jwt",
            sub="agency-client",
            client_id="agency-client",
            agency=f"TH-JUR:{agency}",
            scope=scope,
            aud="urn:egov:keys",
            acr=None,
            auth_time=None,
        )

    @contextmanager
    def serve_jwks(self) -> Iterator[str]:
        body = json.dumps(self.jwks()).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
        finally:
            server.shutdown()
            server.server_close()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def keys_settings(database_url: str, **overrides: Any) -> KeysSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "http_listen": "127.0.0.1:8082",
        "software_kek": new_kek(),
        "identity_issuer": ISSUER,
        "token_audiences": f"{AUDIENCE},urn:egov:keys",
        "sign_callers": "signing",
        "audit_callers": "auditor",
    }
    values.update(overrides)
    return KeysSettings(**values)


def build_keys(
    database_url: str, identity: LocalIdentity, clock: FixedClock | None = None, **overrides: Any
) -> KeysRuntime:
    proofs = IdentityProofVerifier(StaticJwks(identity.jwks()), ISSUER, (AUDIENCE, "urn:egov:keys"))
    return build_runtime(keys_settings(database_url, **overrides), proofs, clock)


def another_process(
    keys: KeysRuntime, identity: LocalIdentity, clock: FixedClock | None = None, **overrides: Any
) -> KeysRuntime:
    """A second keys process on ``keys``'s database, with the same KEK (callers close it)."""
    return build_keys(
        keys.settings.database_url,
        identity,
        clock,
        software_kek=keys.settings.software_kek.get_secret_value(),
        **overrides,
    )


def fixed_clock() -> FixedClock:
    return FixedClock(dt.datetime.now(dt.UTC))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
