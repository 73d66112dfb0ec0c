"""Signing settings: ``EGOV_SIGNING_*`` environment variables, read once in ``__main__``.

Peers: ``EGOV_KEYS_ADDRESS`` (credentials, Authorize, SignHash, trust-service URLs) and
``EGOV_REGISTRY_ADDRESS`` (reserve and register documents, registry status in reports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from egov_common.settings import ServiceSettings, peer_address
from pydantic import Field

__all__ = ["SigningSettings"]

_MIB = 1024 * 1024


class SigningSettings(ServiceSettings):
    keys_address: str = peer_address("KEYS")
    registry_address: str = peer_address("REGISTRY")
    #: PEM files of extra trust anchors for verification (the keys service's root is always
    #: trusted once keys is reachable), as a JSON array of paths.
    trust_anchor_files: list[Path] = Field(default_factory=list)
    #: ``hard-fail``: revocation status required wherever a certificate names OCSP/CRL
    #: (EN 319 102-1 strictness); ``soft-fail`` tolerates missing revocation data.
    revocation_mode: Literal["hard-fail", "soft-fail"] = "hard-fail"
    #: Fetch OCSP/CRL on line, only from our keys service's URLs (never from URLs in a PDF).
    fetch_revocation: bool = True
    #: OCSP responses and CRLs fetched for the DSS of B-LT/B-LTA signatures are reused for up to
    #: this long (never past their nextUpdate); 0: fetched for every document. Verification
    #: never reuses them.
    revocation_cache_seconds: float = Field(default=300.0, ge=0)
    #: Largest PDF accepted, in bytes (streamed uploads stop as soon as it is exceeded).
    max_document_bytes: int = Field(default=50 * _MIB, gt=0)
    max_pages: int = Field(default=2000, gt=0)
    max_signatures: int = Field(default=50, gt=0)
    #: Total decoded stream bytes allowed per document (decompression-bomb guard), floor.
    max_decoded_bytes: int = Field(default=128 * _MIB, gt=0)
    #: Uploads larger than this wait in an unnamed temporary file (in a private directory under
    #: ``spool_dir``, default the system temp directory) instead of memory; freed when the call
    #: ends, whatever the outcome.
    spool_memory_bytes: int = Field(default=1 * _MIB, ge=0)
    spool_dir: Path | None = None
    #: Wall-clock budget for one document, in seconds.
    document_deadline: float = Field(default=60.0, gt=0)
    #: Documents per SignDocuments call.
    max_batch_documents: int = Field(default=100, gt=0, le=1000)
    #: TrueType/OpenType font with Thai glyphs for visible stamps; default: TLWG Garuda/Loma.
    stamp_font_file: Path | None = None
    #: DEVELOPMENT without mTLS: our own bearer token towards keys and registry.
    keys_token: str = ""
    registry_token: str = ""
    #: Pinned registry tree-head key (PEM) for inclusion proofs; default: ask the registry.
    registry_log_key_file: Path | None = None
    #: Bytes reserved in the signature for the signature time-stamp token (B-T and above).
    timestamp_reserve_bytes: int = Field(default=12_000, gt=1000)
    #: Verify callers' bearer tokens (identity's issuer; its JWKS URL, default: from the issuer's
    #: discovery document) before forwarding them;
    #: unset: tokens are forwarded unverified to keys and registry, which decide.
    token_issuer: str = ""
    token_jwks_url: str = ""
    token_audience: str = "urn:egov:signing"  # noqa: S105 - an audience, not a secret
