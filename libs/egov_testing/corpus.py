"""Where the shared corpus of signed PDFs made by others lives, with the verdicts a correct
validator gives (`../shared/testdata` beside the repository; `EGOV_TEST_PDF_CORPUS` overrides)."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """The corpus root (it holds `manifest.json`, `pdf/` and `trust/`)."""
    configured = os.environ.get("EGOV_TEST_PDF_CORPUS")
    if configured:
        return Path(configured)
    return REPOSITORY.parent / "shared" / "testdata"
