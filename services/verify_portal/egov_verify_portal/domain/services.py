"""The two peers the portal asks, as one small interface the web layer depends on.

``adapters.peers.GrpcTrustServices`` implements it over gRPC; tests use a fake.
"""

from __future__ import annotations

import enum
from typing import Protocol

from .report import RegistryFinding, VerificationReport


class PeerUnavailable(Exception):
    """Signing or registry could not be reached or did not answer in time."""


class DocumentNotFound(Exception):
    """The registry has no document with that id."""


class RejectionReason(enum.StrEnum):
    BROKEN_PDF = "broken_pdf"
    ENCRYPTED = "encrypted"
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    TOO_COMPLEX = "too_complex"


class DocumentRejected(Exception):
    """The signing service refused to read the file (it is not a report, it is bad input)."""

    def __init__(self, reason: RejectionReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class TrustServices(Protocol):
    def verify(self, pdf: bytes, file_name: str, *, language: str) -> VerificationReport:
        """Validate the PDF's signatures and look its hash up in the registry.

        Raises ``DocumentRejected`` for input the signing service cannot read and
        ``PeerUnavailable`` when signing cannot be asked (an unreachable registry is a
        finding in the report, not an error).
        """
        ...

    def registry_entry(self, document_id: str) -> RegistryFinding:
        """The registry's entry with its inclusion proof checked.

        Raises ``DocumentNotFound`` or ``PeerUnavailable``.
        """
        ...

    def peers_ready(self) -> dict[str, bool]:
        """gRPC health of each peer by name (``signing``, ``registry``)."""
        ...
