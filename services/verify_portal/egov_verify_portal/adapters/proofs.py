"""Check a registry entry's inclusion proof in the portal's back end (RFC 9162 section 2.1.3).

The registry signs its tree heads with the log key; the portal verifies the signature (with a
pinned key when configured, else the key ``GetLogInfo`` names, checked against its log id), the
audit path from the document's latest leaf to that head, and that the leaf is about this
document (its id, hash and current status), so a registry answering with someone else's leaf
is caught.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov.registry.v1 import registry_pb2, registry_pb2_grpc
from egov_common.status import from_rpc_error
from egov_pki import merkle

from ..domain.report import ProofCheck

log = logging.getLogger("egov_verify_portal.proofs")

_STATUS_NAMES = {
    registry_pb2.DOCUMENT_STATUS_REGISTERED: "REGISTERED",
    registry_pb2.DOCUMENT_STATUS_REVOKED: "REVOKED",
    registry_pb2.DOCUMENT_STATUS_SUPERSEDED: "SUPERSEDED",
}


@dataclass(frozen=True, slots=True)
class ProofOutcome:
    result: ProofCheck
    detail: str = ""
    tree_size: int = 0


class InclusionChecker:
    def __init__(
        self,
        registry: registry_pb2_grpc.RegistryServiceStub,
        *,
        timeout: float,
        pinned_key_file: Path | None = None,
    ) -> None:
        self._registry = registry
        self._timeout = timeout
        self._pinned: ec.EllipticCurvePublicKey | None = None
        if pinned_key_file is not None:
            key = serialization.load_pem_public_key(pinned_key_file.read_bytes())
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValueError(f"{pinned_key_file}: the registry log key must be ECDSA P-256")
            self._pinned = key

    def check(self, document: registry_pb2.Document) -> ProofOutcome:
        """Never raises: an unreachable registry is NOT_AVAILABLE, a bad proof FAILED."""
        try:
            key = self._log_key()
            reply = self._registry.GetInclusionProof(
                registry_pb2.GetInclusionProofRequest(document_id=document.document_id),
                timeout=self._timeout,
            )
        except grpc.RpcError as err:
            log.warning("inclusion proof not available: %s", from_rpc_error(err))
            return ProofOutcome(ProofCheck.NOT_AVAILABLE, "registry did not answer")
        except ValueError as exc:
            return ProofOutcome(ProofCheck.FAILED, str(exc))
        head = reply.tree_head
        try:
            verify_proof(document, reply, key)
        except merkle.MerkleProofError as exc:
            log.warning("inclusion proof for %s FAILED: %s", document.document_id, exc)
            return ProofOutcome(ProofCheck.FAILED, str(exc), head.tree_size)
        return ProofOutcome(ProofCheck.VERIFIED, "", head.tree_size)

    def _log_key(self) -> ec.EllipticCurvePublicKey:
        if self._pinned is not None:
            return self._pinned
        info = self._registry.GetLogInfo(registry_pb2.GetLogInfoRequest(), timeout=self._timeout)
        if hashlib.sha256(info.public_key_der).digest() != info.log_id:
            raise ValueError("log id does not match the log key")
        key = serialization.load_der_public_key(info.public_key_der)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the registry log key is not an EC key")
        return key


def verify_proof(
    document: registry_pb2.Document,
    reply: registry_pb2.GetInclusionProofResponse,
    key: ec.EllipticCurvePublicKey,
) -> None:
    """Raise ``MerkleProofError`` unless ``reply`` proves the document's current leaf."""
    head = reply.tree_head
    tree_head = merkle.TreeHead(
        tree_size=head.tree_size,
        root_hash=bytes(head.root_hash),
        timestamp_ms=head.timestamp.seconds * 1000 + head.timestamp.nanos // 1_000_000,
        signature=bytes(head.signature),
    )
    merkle.verify_tree_head_signature(tree_head, key)
    entry = reply.entry
    leaf = bytes(entry.leaf_data)
    if entry.document_id != document.document_id:
        raise merkle.MerkleProofError("the proven leaf is about another document")
    for needed, what in (
        (document.document_id.encode(), "document id"),
        (bytes(document.sha256), "document hash"),
        (_STATUS_NAMES.get(document.status, "?").encode(), "current status"),
    ):
        if needed not in leaf:
            raise merkle.MerkleProofError(f"the proven leaf does not commit to the {what}")
    merkle.verify_inclusion(
        merkle.leaf_hash(leaf),
        entry.leaf_index,
        head.tree_size,
        [bytes(p) for p in reply.audit_path],
        bytes(head.root_hash),
    )
