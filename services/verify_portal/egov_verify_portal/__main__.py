"""``python -m egov_verify_portal``: serve the verify portal over HTTP with uvicorn."""

from __future__ import annotations

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
