"""Carry a report from the report page to its downloads without keeping any state.

The portal holds nothing between requests, yet the XML and PDF downloads must show the report
the page showed, not one a visitor wrote. The page therefore embeds the report sealed with
HMAC-SHA256 under a key from the settings (shared by all replicas) and an expiry; the download
endpoints accept only an intact, unexpired seal.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import hmac
import json
import types
import typing
import zlib
from datetime import datetime, timedelta
from typing import Any, TypeVar

from .domain.report import VerificationReport

# v2: the report carries the document it was compared with (expected_document_id); a v1
# token's comparison travelled unsealed beside it, so v1 tokens are refused.
_VERSION = b"v2"
_T = TypeVar("_T")


class SealBroken(Exception):
    """The sealed report was altered, was sealed under another key, or has expired."""


def seal_report(report: VerificationReport, key: bytes, *, now: datetime, ttl: timedelta) -> str:
    """Encode ``report`` into a URL-safe token valid until ``now + ttl``."""
    payload = {"exp": int((now + ttl).timestamp()), "report": _encode(report)}
    body = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 9)
    mac = hmac.new(key, _VERSION + body, hashlib.sha256).digest()
    return _VERSION.decode() + "." + _b64(mac) + "." + _b64(body)


def open_report(token: str, key: bytes, *, now: datetime) -> VerificationReport:
    """Decode a token from ``seal_report``; raises ``SealBroken`` unless intact and unexpired."""
    try:
        version, mac_text, body_text = token.strip().split(".")
        mac, body = _unb64(mac_text), _unb64(body_text)
    except ValueError:
        raise SealBroken("malformed") from None
    expected = hmac.new(key, version.encode() + body, hashlib.sha256).digest()
    if version.encode() != _VERSION or not hmac.compare_digest(mac, expected):
        raise SealBroken("bad seal")
    try:
        payload = json.loads(zlib.decompress(body, bufsize=1 << 20))
        if int(payload["exp"]) < now.timestamp():
            raise SealBroken("expired")
        report: VerificationReport = _decode(VerificationReport, payload["report"])
        return report
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise SealBroken("undecodable") from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return _b64(value)
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def _decode(kind: Any, raw: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if raw is None else _decode(options[0], raw)
    if origin is tuple:
        (item,) = typing.get_args(kind)[:1]
        return tuple(_decode(item, v) for v in raw)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(  # type: ignore[operator]
            **{f.name: _decode(hints[f.name], raw[f.name]) for f in dataclasses.fields(kind)}
        )
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(raw)
    if kind is datetime:
        return datetime.fromisoformat(raw)
    if kind is bytes:
        return _unb64(raw)
    if kind in (str, int, bool) and isinstance(raw, kind):
        return raw
    raise TypeError(f"cannot decode {kind!r} from {type(raw).__name__}")
