"""Check a registry entry against the transparency log in the portal's back end.

``egov_clients.registry.RegistryClient.verify_document`` does the work (RFC 9162 inclusion
proofs for every status change of the document, tree-head signatures by the log key, and
consistency with the heads this process saw before); this module turns its verdict into the
portal's ``ProofCheck``. One client per process remembers the newest verified tree head, so a
registry that shows different visitors different logs is caught; a lock keeps that memory
consistent under concurrent requests. A page waits for the lock only as long as its deadline
(``egov_common.deadlines``) allows: behind a hung registry, the pages queued for the lock end
in time too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from egov.registry.v1 import registry_pb2
from egov_clients.registry import RegistryClient
from egov_common.deadlines import remaining
from egov_common.errors import EgovError
from egov_pki import merkle

from ..domain.report import ProofCheck

log = logging.getLogger("egov_verify_portal.proofs")


@dataclass(frozen=True, slots=True)
class ProofOutcome:
    result: ProofCheck
    detail: str = ""
    tree_size: int = 0


class InclusionChecker:
    def __init__(self, client: RegistryClient) -> None:
        self._client = client
        self._lock = threading.Lock()

    def check(self, document: registry_pb2.Document) -> ProofOutcome:
        """Never raises: an unreachable registry is NOT_AVAILABLE, a bad proof FAILED."""
        left = remaining()
        if not self._lock.acquire(timeout=-1 if left is None else max(left, 0.0)):
            log.warning("log proof for %s not available: out of time", document.document_id)
            return ProofOutcome(ProofCheck.NOT_AVAILABLE, "DEADLINE_EXCEEDED")
        try:
            verified = self._client.verify_document(document)
        except merkle.MerkleProofError as exc:
            log.warning("log proof for %s FAILED: %s", document.document_id, exc)
            return ProofOutcome(ProofCheck.FAILED, str(exc))
        except EgovError as exc:
            log.warning("log proof for %s not available: %s", document.document_id, exc)
            return ProofOutcome(ProofCheck.NOT_AVAILABLE, exc.reason)
        finally:
            self._lock.release()
        return ProofOutcome(ProofCheck.VERIFIED, "", verified.tree_head.tree_size)
