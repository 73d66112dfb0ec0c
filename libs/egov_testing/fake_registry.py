"""A registry client stand-in for the tests of its callers (signing, the verify portal)."""

from __future__ import annotations

from egov.registry.v1 import registry_pb2
from egov_pki import merkle

__all__ = ["RegistryWithEntries"]


class RegistryWithEntries:
    """LookupByHash as the registry answers it: one entry per issuer, oldest first, with the
    given statuses. ``proofs_verify``: whether ``verify_document`` accepts an entry's log proofs
    (else it raises ``MerkleProofError``)."""

    def __init__(
        self, *statuses: registry_pb2.DocumentStatus, proofs_verify: bool = True
    ) -> None:
        self.documents = [
            registry_pb2.Document(document_id=f"DOC-{n}", status=status)
            for n, status in enumerate(statuses)
        ]
        self.proofs_verify = proofs_verify

    def lookup_by_hash(self, sha256: bytes) -> list[registry_pb2.Document]:
        return list(self.documents)

    def verify_document(self, document: registry_pb2.Document) -> None:
        if not self.proofs_verify:
            raise merkle.MerkleProofError("not checked in this test")
