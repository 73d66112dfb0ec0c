"""Settings of the verify portal: ``EGOV_VERIFY_PORTAL_*`` plus its peers' addresses.

- ``EGOV_VERIFY_PORTAL_HTTP_LISTEN`` (``127.0.0.1:8080``): where the pages are served.
- ``EGOV_SIGNING_ADDRESS`` (``127.0.0.1:50054``): signing service (VerifyDocument).
- ``EGOV_REGISTRY_ADDRESS`` (``127.0.0.1:50053``): registry (GetDocument, LookupByHash, proofs).
- ``EGOV_VERIFY_PORTAL_MAX_UPLOAD_BYTES`` (20 MiB): largest PDF accepted, shown on the page.
- ``EGOV_VERIFY_PORTAL_MAX_UPLOADS_IN_FLIGHT`` (6): uploads one process reads or verifies at
  once; more are answered 503 with Retry-After. Each holds up to about twice the largest PDF
  in memory for a moment: 6 x 2 x 20 MiB, the report forms being read (8 x 3 x 4 MiB at
  most) and the process itself (~110 MiB) fit the container's 512 MiB (README, "Memory").
- ``EGOV_VERIFY_PORTAL_BODY_READ_TIMEOUT`` (30): seconds a request body may go without a
  byte (an upload) or may take in all (a report form), else 408.
- ``EGOV_VERIFY_PORTAL_UPLOAD_DEADLINE`` (300): seconds a whole upload may take, else 408.
- ``EGOV_VERIFY_PORTAL_REPORT_SEAL_KEY`` (random per process): HMAC key, hex, at least 32
  bytes, sealing reports for their downloads; set the same value on every replica.
- ``EGOV_VERIFY_PORTAL_REPORT_TTL`` (3600): seconds a report page's downloads stay available.
- ``EGOV_VERIFY_PORTAL_PEER_TIMEOUT`` (60): seconds one page may spend on its peers in all
  (signing and every registry call for it), never retried.
- ``EGOV_VERIFY_PORTAL_PUBLIC_URL`` (empty): the portal's public base URL, printed in the PDF.
- ``EGOV_VERIFY_PORTAL_FONT_REGULAR`` / ``_FONT_BOLD`` (TLWG Garuda): Thai TrueType fonts
  embedded in the PDF summary (a font with 1000 units per em: pyHanko 0.38 writes glyph
  widths unscaled).
- ``EGOV_VERIFY_PORTAL_REGISTRY_LOG_KEY_FILE`` (empty): PEM public key of the registry's log
  to pin; empty trusts the key that GetLogInfo returns (checked against its log id).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from egov_common.settings import ServiceSettings, peer_address
from pydantic import Field, field_validator

TLWG_FONTS = Path("/usr/share/fonts/truetype/tlwg")


class VerifyPortalSettings(ServiceSettings):
    signing_address: str = peer_address("SIGNING")
    registry_address: str = peer_address("REGISTRY")
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_uploads_in_flight: int = Field(default=6, gt=0)
    body_read_timeout: float = Field(default=30.0, gt=0)
    upload_deadline: float = Field(default=300.0, gt=0)
    report_seal_key: str = ""
    report_ttl: float = Field(default=3600.0, gt=0)
    peer_timeout: float = Field(default=60.0, gt=0)
    public_url: str = ""
    font_regular: Path = TLWG_FONTS / "Garuda.ttf"
    font_bold: Path = TLWG_FONTS / "Garuda-Bold.ttf"
    registry_log_key_file: Path | None = None

    @field_validator("report_seal_key")
    @classmethod
    def _seal_key(cls, value: str) -> str:
        if value:
            try:
                key = bytes.fromhex(value)
            except ValueError:
                raise ValueError("expected hex") from None
            if len(key) < 32:
                raise ValueError("expected at least 32 bytes (64 hex digits)")
        return value

    def seal_key_bytes(self) -> bytes:
        """The configured key, or a fresh random one (downloads then work on this replica only)."""
        return (
            bytes.fromhex(self.report_seal_key) if self.report_seal_key else secrets.token_bytes(32)
        )
