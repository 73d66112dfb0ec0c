"""The keys service over gRPC: the :class:`KeysPort` of the signing flow, and its trust services
(CA certificates, TSA and OCSP/CRL URLs) for time-stamps, DSS material and verification.

Only digests go out (Authorize, SignHash); certificates and signature values come back.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from egov.keys.v1 import keys_pb2 as pb
from egov.keys.v1 import keys_pb2_grpc
from egov.type.v1 import crypto_pb2
from egov_common.deadlines import remaining
from egov_common.errors import EgovError, Unavailable
from egov_common.status import from_rpc_error

from ..domain.ports import KeyAlgorithm, SignatureActivationData, SigningCredential

__all__ = ["GrpcKeysPort", "TrustServiceInfo", "fetch_trust_service_info"]

_HASHES = {
    "sha256": crypto_pb2.HASH_ALGORITHM_SHA256,
    "sha384": crypto_pb2.HASH_ALGORITHM_SHA384,
    "sha512": crypto_pb2.HASH_ALGORITHM_SHA512,
}
_KEY_ALGORITHMS = {
    crypto_pb2.KEY_ALGORITHM_ECDSA_P256: KeyAlgorithm.ECDSA_P256,
    crypto_pb2.KEY_ALGORITHM_ECDSA_P384: KeyAlgorithm.ECDSA_P384,
    crypto_pb2.KEY_ALGORITHM_RSA_3072: KeyAlgorithm.RSA_3072,
}


def _keys_error(err: grpc.RpcError) -> EgovError:
    """keys' error as it is; a transport failure (no ErrorInfo) as UNAVAILABLE KEYS_UNAVAILABLE."""
    error = from_rpc_error(err)
    if error.reason in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        return Unavailable("KEYS_UNAVAILABLE", "the keys service cannot be reached")
    return error


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


class GrpcKeysPort:
    """KeysPort over a channel to keys. ``service_token`` (development without mTLS) is sent as
    our own bearer token; with mTLS the channel's certificate names us."""

    def __init__(
        self, channel: grpc.Channel, *, service_token: str = "", deadline: float = 20.0
    ) -> None:
        self._stub = keys_pb2_grpc.KeysServiceStub(channel)
        self._metadata = _metadata(service_token)
        self._deadline = deadline

    def _call(self, method: object, request: object) -> object:
        # What is left of our caller's deadline, never more than our own cap: keys must not
        # keep working for a caller who has given up.
        left = remaining()
        timeout = self._deadline if left is None else max(0.0, min(self._deadline, left))
        try:
            return method(request, timeout=timeout, metadata=self._metadata)  # type: ignore[operator]
        except grpc.RpcError as err:
            # keys' own status (e.g. UNAUTHENTICATED SAD_EXPIRED) reaches our caller as it is
            raise _keys_error(err) from None

    def get_credential(self, credential_id: str) -> SigningCredential:
        reply = self._call(
            self._stub.GetCredential, pb.GetCredentialRequest(credential_id=credential_id)
        )
        credential = reply.credential  # type: ignore[attr-defined]
        return SigningCredential(
            credential_id=credential.credential_id,
            certificate_chain=tuple(credential.certificate_chain),
            key_algorithm=_KEY_ALGORITHMS.get(credential.key_algorithm, KeyAlgorithm.ECDSA_P256),
            electronic_seal=credential.kind == pb.CREDENTIAL_KIND_ELECTRONIC_SEAL,
        )

    def authorize(
        self,
        credential_id: str,
        hashes: Sequence[bytes],
        *,
        hash_algorithm: str,
        authorization_proof: str,
        description: str,
    ) -> SignatureActivationData:
        reply = self._call(
            self._stub.Authorize,
            pb.AuthorizeRequest(
                credential_id=credential_id,
                hashes=list(hashes),
                hash_algorithm=_HASHES[hash_algorithm],
                num_signatures=len(hashes),
                authorization_proof=authorization_proof,
                description=description,
            ),
        )
        expires = reply.expires_at  # type: ignore[attr-defined]
        return SignatureActivationData(
            reply.sad,  # type: ignore[attr-defined]
            expires.ToDatetime(tzinfo=dt.UTC) if expires.seconds else None,
        )

    def sign_hash(
        self,
        credential_id: str,
        sad: SignatureActivationData,
        hashes: Sequence[bytes],
        *,
        hash_algorithm: str,
        key_algorithm: KeyAlgorithm,
    ) -> list[bytes]:
        reply = self._call(
            self._stub.SignHash,
            pb.SignHashRequest(
                credential_id=credential_id,
                sad=sad.value,
                hashes=list(hashes),
                hash_algorithm=_HASHES[hash_algorithm],
                signature_algorithm=(
                    crypto_pb2.SIGNATURE_ALGORITHM_ECDSA
                    if key_algorithm.is_ec
                    else crypto_pb2.SIGNATURE_ALGORITHM_RSA_PKCS1V15
                ),
            ),
        )
        return list(reply.signatures)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TrustServiceInfo:
    """What keys publishes: CA certificates (DER) by role and the HTTP trust-service URLs."""

    root_certificates: tuple[bytes, ...]
    all_certificates: tuple[bytes, ...]
    tsa_url: str
    ocsp_url: str
    crl_urls: tuple[str, ...]

    @property
    def url_prefixes(self) -> tuple[str, ...]:
        """Where revocation fetching may go: our own OCSP, CRL and CA-certificate URLs."""
        prefixes = [u for u in (self.ocsp_url, *self.crl_urls) if u]
        return tuple(sorted(set(prefixes)))


def fetch_trust_service_info(
    channel: grpc.Channel, *, service_token: str = "", deadline: float = 10.0
) -> TrustServiceInfo:
    stub = keys_pb2_grpc.KeysServiceStub(channel)
    try:
        reply = stub.GetTrustServiceInfo(
            pb.GetTrustServiceInfoRequest(), timeout=deadline, metadata=_metadata(service_token)
        )
    except grpc.RpcError as err:
        raise _keys_error(err) from None
    roots = tuple(c.certificate_der for c in reply.certificates if c.role == "root")
    return TrustServiceInfo(
        root_certificates=roots,
        all_certificates=tuple(c.certificate_der for c in reply.certificates),
        tsa_url=reply.tsa_url,
        ocsp_url=reply.ocsp_url,
        crl_urls=tuple(c.crl_url for c in reply.certificates if c.crl_url),
    )


class CachedTrustServiceInfo:
    """Fetched from keys on first use (keys may start after us), then kept."""

    def __init__(self, channel: grpc.Channel, *, service_token: str = "") -> None:
        self._channel = channel
        self._token = service_token
        self._lock = threading.Lock()
        self._info: TrustServiceInfo | None = None

    def get(self) -> TrustServiceInfo:
        with self._lock:
            if self._info is None:
                self._info = fetch_trust_service_info(self._channel, service_token=self._token)
            return self._info
