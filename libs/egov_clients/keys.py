"""Typed client of the keys service (``egov.keys.v1``).

    keys = KeysClient(channel)
    credential = keys.get_credential(credential_id)          # chain: credential.certificate_chain
    signatures = keys.authorize_and_sign(                    # the signing service's one call
        credential_id, [digest], proof=id_token, description="DOC-2026-000123")

``authorize_and_sign`` is the whole sole-control round trip: Authorize (the owner's proof binds a
single-use SAD to exactly these digests) then SignHash (burns the SAD). SignHash is never retried:
a SAD is spent at most once, so a retry after a lost reply fails with ``SAD_ALREADY_USED``
instead of signing twice. Errors arrive as ``egov_common.errors.EgovError`` subclasses with the
server's reason (``SAD_EXPIRED``, ``CREDENTIAL_REVOKED`` ...).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from egov.keys.v1 import keys_pb2 as pb
from egov.keys.v1 import keys_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_common.errors import Internal, Unavailable
from egov_common.status import from_rpc_error

__all__ = [
    "HASH_ALGORITHMS",
    "KeysClient",
    "TrustInfo",
    "party",
]

T = TypeVar("T")

#: ``"sha256"`` -> proto enum (the names hashlib and pyHanko use).
HASH_ALGORITHMS = {
    "sha256": crypto_pb2.HASH_ALGORITHM_SHA256,
    "sha384": crypto_pb2.HASH_ALGORITHM_SHA384,
    "sha512": crypto_pb2.HASH_ALGORITHM_SHA512,
}
_SIGNATURE_ALGORITHMS = {
    "ecdsa": crypto_pb2.SIGNATURE_ALGORITHM_ECDSA,
    "rsa_pkcs1v15": crypto_pb2.SIGNATURE_ALGORITHM_RSA_PKCS1V15,
    "rsa_pss": crypto_pb2.SIGNATURE_ALGORITHM_RSA_PSS,
}
_NAMESPACES = {
    "TH-PID": party_pb2.IDENTIFIER_NAMESPACE_TH_PID,
    "TH-JUR": party_pb2.IDENTIFIER_NAMESPACE_TH_JUR,
    "PASSPORT": party_pb2.IDENTIFIER_NAMESPACE_PASSPORT,
}


def party(identifier: str) -> party_pb2.PartyIdentifier:
    """``"TH-PID:1101700230708"`` -> PartyIdentifier (the namespace is explicit)."""
    namespace, _, value = identifier.partition(":")
    if namespace not in _NAMESPACES or not value:
        raise ValueError(f"expected <TH-PID|TH-JUR|PASSPORT>:<value>, got {identifier!r}")
    return party_pb2.PartyIdentifier(namespace=_NAMESPACES[namespace], value=value)


@dataclass(frozen=True, slots=True)
class TrustInfo:
    """Trust anchors and service URLs: ``certificates`` maps a name (``root``,
    ``natural-person``, ``legal-person``, ``tsa``, ``ocsp-<ca>``) to DER."""

    certificates: dict[str, bytes]
    ocsp_url: str
    tsa_url: str
    tsa_policy_oid: str
    crl_urls: dict[str, str]

    @property
    def root(self) -> bytes:
        return self.certificates["root"]


class KeysClient:
    """``token``: bearer token sent as call metadata (an agency client calling for its e-seal);
    ``timeout``: deadline of each call in seconds."""

    def __init__(
        self, channel: grpc.Channel, *, token: str | None = None, timeout: float = 30.0
    ) -> None:
        self._stub = keys_pb2_grpc.KeysServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout

    def _call(self, method: Callable[..., T], request: object) -> T:
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def create_credential(
        self,
        owner: str,
        kind: pb.CredentialKind,
        *,
        proof: str = "",
        names: party_pb2.PartyNames | None = None,
        key_algorithm: crypto_pb2.KeyAlgorithm = crypto_pb2.KEY_ALGORITHM_ECDSA_P256,
        key_backend: pb.KeyBackend = pb.KEY_BACKEND_UNSPECIFIED,
        idempotency_key: str | None = None,
    ) -> pb.Credential:
        """``kind``: ``pb.CREDENTIAL_KIND_*``. Retried once on UNAVAILABLE with the same key."""
        request = pb.CreateCredentialRequest(
            idempotency_key=idempotency_key or secrets.token_hex(16),
            owner=party(owner),
            kind=kind,
            key_algorithm=key_algorithm,
            names=names,
            authorization_proof=proof,
            key_backend=key_backend,
        )
        reply: pb.CreateCredentialResponse
        try:
            reply = self._call(self._stub.CreateCredential, request)
        except Unavailable:  # one retry; the idempotency key makes it safe
            reply = self._call(self._stub.CreateCredential, request)
        return reply.credential

    def get_credential(self, credential_id: str) -> pb.Credential:
        reply: pb.GetCredentialResponse = self._call(
            self._stub.GetCredential, pb.GetCredentialRequest(credential_id=credential_id)
        )
        return reply.credential

    def list_credentials(self, owner: str, *, proof: str = "") -> list[pb.Credential]:
        out: list[pb.Credential] = []
        token = ""
        while True:
            page = self._call(
                self._stub.ListCredentials,
                pb.ListCredentialsRequest(
                    owner=party(owner), authorization_proof=proof, page_size=100, page_token=token
                ),
            )
            out.extend(page.credentials)
            if page.next_page_token and page.next_page_token == token:
                # the same page again would never end the loop
                raise Internal("PAGE_TOKEN_REPEATED", "the keys service repeated a page token")
            token = page.next_page_token
            if not token:
                return out

    def revoke_credential(
        self, credential_id: str, reason: pb.CertificateRevocationReason, *, proof: str = ""
    ) -> pb.Credential:
        reply: pb.RevokeCredentialResponse = self._call(
            self._stub.RevokeCredential,
            pb.RevokeCredentialRequest(
                credential_id=credential_id, reason=reason, authorization_proof=proof
            ),
        )
        return reply.credential

    def authorize(
        self,
        credential_id: str,
        digests: Sequence[bytes],
        *,
        proof: str = "",
        hash_algorithm: str = "sha256",
        description: str = "",
    ) -> str:
        """A single-use SAD for exactly ``digests`` (the server's expiry applies)."""
        response = self._call(
            self._stub.Authorize,
            pb.AuthorizeRequest(
                credential_id=credential_id,
                hashes=list(digests),
                hash_algorithm=HASH_ALGORITHMS[hash_algorithm],
                num_signatures=len(digests),
                authorization_proof=proof,
                description=description,
            ),
        )
        sad: str = response.sad
        return sad

    def sign_hash(
        self,
        credential_id: str,
        sad: str,
        digests: Sequence[bytes],
        *,
        hash_algorithm: str = "sha256",
        signature_algorithm: str = "",
    ) -> list[bytes]:
        """Signature values in the order of ``digests`` (ECDSA as DER). Never retried."""
        response = self._call(
            self._stub.SignHash,
            pb.SignHashRequest(
                credential_id=credential_id,
                sad=sad,
                hashes=list(digests),
                hash_algorithm=HASH_ALGORITHMS[hash_algorithm],
                signature_algorithm=_SIGNATURE_ALGORITHMS.get(signature_algorithm),
            ),
        )
        return list(response.signatures)

    def authorize_and_sign(
        self,
        credential_id: str,
        digests: Sequence[bytes],
        *,
        proof: str = "",
        hash_algorithm: str = "sha256",
        signature_algorithm: str = "",
        description: str = "",
    ) -> list[bytes]:
        sad = self.authorize(
            credential_id,
            digests,
            proof=proof,
            hash_algorithm=hash_algorithm,
            description=description,
        )
        return self.sign_hash(
            credential_id,
            sad,
            digests,
            hash_algorithm=hash_algorithm,
            signature_algorithm=signature_algorithm,
        )

    def trust_info(self) -> TrustInfo:
        info = self._call(self._stub.GetTrustServiceInfo, pb.GetTrustServiceInfoRequest())
        certificates: dict[str, bytes] = {}
        crls: dict[str, str] = {}
        for c in info.certificates:
            name = c.certificate_url.rsplit("/", 1)[-1].removesuffix(".crt") or c.role
            certificates[name] = c.certificate_der
            if c.crl_url:
                crls[name] = c.crl_url
        return TrustInfo(certificates, info.ocsp_url, info.tsa_url, info.tsa_policy_oid, crls)

    def verify_audit_log(self) -> pb.VerifyAuditLogResponse:
        reply: pb.VerifyAuditLogResponse = self._call(
            self._stub.VerifyAuditLog, pb.VerifyAuditLogRequest()
        )
        return reply
