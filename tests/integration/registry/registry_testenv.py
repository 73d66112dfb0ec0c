"""Registry test environment: agencies, static tokens, and the env of a registry process."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from egov_pki.identifiers import check_digit
from egov_testing.processes import ServiceProcess


def thai_number(first_twelve: str) -> str:
    return first_twelve + str(check_digit(first_twelve))


def agency_number(seed: int) -> str:
    return thai_number(f"0994{seed:08d}")


AGENCY = f"TH-JUR:{agency_number(1)}"
OTHER_AGENCY = f"TH-JUR:{agency_number(2)}"
ISSUER_TOKEN = "issuer-token-agency-1"
OTHER_ISSUER_TOKEN = "issuer-token-agency-2"
READER_TOKEN = "reader-token"
AUDITOR_TOKEN = "auditor-token"
STATIC_TOKENS = {
    ISSUER_TOKEN: {
        "subject": "agency-1-backoffice",
        "scopes": ["registry:issue"],
        "agency": AGENCY,
    },
    OTHER_ISSUER_TOKEN: {
        "subject": "agency-2-backoffice",
        "scopes": ["registry:issue"],
        "agency": OTHER_AGENCY,
    },
    READER_TOKEN: {"subject": "relying-party", "scopes": ["registry:read"]},
    AUDITOR_TOKEN: {"subject": "auditor", "scopes": ["registry:audit"]},
}


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def registry_env(database_url: str, key_file: Path) -> dict[str, str]:
    return {
        "EGOV_REGISTRY_DATABASE_URL": database_url,
        "EGOV_REGISTRY_LOG_KEY_FILE": str(key_file),
        "EGOV_REGISTRY_STATIC_TOKENS": json.dumps(STATIC_TOKENS),
        "EGOV_REGISTRY_LOG_LEVEL": "WARNING",
    }


def local_root(leaf_data: list[bytes]) -> bytes:
    """The root an auditor computes from the log's entries alone (RFC 9162)."""
    from egov_pki import merkle

    nodes: dict[merkle.NodeKey, bytes] = {}
    for index, data in enumerate(leaf_data):
        nodes.update(merkle.append_nodes(index, merkle.leaf_hash(data), nodes))
    if not leaf_data:
        return merkle.empty_root()
    return merkle.range_hash(0, len(leaf_data), nodes)


def all_log_entries(client: object) -> list[object]:
    """Every log entry, as ``client`` may see it (its leaves' data with an auditor's token)."""
    size = client.get_signed_tree_head().tree_size  # type: ignore[attr-defined]
    return list(client.log_entries(0, size))  # type: ignore[attr-defined]


StartRegistry = Callable[..., AbstractContextManager[ServiceProcess]]
