"""gRPC request helpers shared by the keys integration tests (one copy of each request shape)."""

from __future__ import annotations

from egov.keys.v1 import keys_pb2
from egov.type.v1 import crypto_pb2, party_pb2
from keys_world import AUDIENCE, ISSUER, PERSON_ID, LocalIdentity, new_kek

SHA256 = crypto_pb2.HASH_ALGORITHM_SHA256


def keys_env(jwks_url: str, **extra: str) -> dict[str, str]:
    env = {
        "EGOV_KEYS_SOFTWARE_KEK": new_kek(),
        "EGOV_KEYS_IDENTITY_ISSUER": ISSUER,
        "EGOV_KEYS_IDENTITY_JWKS_URL": jwks_url,
        "EGOV_KEYS_TOKEN_AUDIENCES": f"{AUDIENCE},urn:egov:keys",
        # mTLS identity "signing", or (tests without mTLS) the OAuth client "signing".
        "EGOV_KEYS_SIGN_CALLERS": "signing,client:signing",
        "EGOV_KEYS_AUDIT_CALLERS": "client:signing",
    }
    env.update(extra)
    return env


def signing_metadata(identity: LocalIdentity) -> tuple[tuple[str, str], ...]:
    """Bearer metadata of the OAuth client ``signing`` (tests without mTLS)."""
    token = identity.token(
        typ="at+jwt", sub="signing", client_id="signing", aud="urn:egov:keys", acr=None,
        auth_time=None,
    )
    return (("authorization", f"Bearer {token}"),)


def create_person_credential(stub, identity: LocalIdentity, key: str) -> keys_pb2.Credential:
    request = keys_pb2.CreateCredentialRequest(
        idempotency_key=key,
        owner=party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value=PERSON_ID
        ),
        kind=keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON,
        names=party_pb2.PartyNames(
            given_name_th="สมชาย",
            family_name_th="ใจดี",
            given_name_en="Somchai",
            family_name_en="Jaidee",
        ),
        authorization_proof=identity.person(),
    )
    return stub.CreateCredential(request, timeout=60).credential


def authorize(stub, identity: LocalIdentity, credential_id: str, hashes: list[bytes]) -> str:
    request = keys_pb2.AuthorizeRequest(
        credential_id=credential_id,
        hashes=hashes,
        hash_algorithm=SHA256,
        num_signatures=len(hashes),
        authorization_proof=identity.person(),
        description="integration test",
    )
    return stub.Authorize(request, timeout=60).sad


def sign_request(credential_id: str, sad: str, hashes: list[bytes]) -> keys_pb2.SignHashRequest:
    return keys_pb2.SignHashRequest(
        credential_id=credential_id, sad=sad, hashes=hashes, hash_algorithm=SHA256
    )
