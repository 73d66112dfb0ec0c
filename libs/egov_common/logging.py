"""Structured JSON logs: one object per line with service and trace id, identifiers masked.

Call :func:`setup_logging` once in ``__main__`` (``serve`` does it). Log with the stdlib::

    log = logging.getLogger(__name__)
    log.info("document registered", extra={"document_id": doc_id, "subject": mask_identifier(pid)})

Never log a key, token or document body. :class:`IdentifierMaskingFilter` masks any 13-digit run
(Thai national ID or juristic number) left in a message as a last line of defence.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from typing import Any

from opentelemetry import trace as _otel_trace

__all__ = [
    "IdentifierMaskingFilter",
    "JsonFormatter",
    "current_trace_id",
    "mask_identifier",
    "mask_text",
    "setup_logging",
    "trace_id_var",
]

#: Trace id for log lines outside an OpenTelemetry span (set by the server per call).
trace_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("egov_trace_id", default="")

# Plain, or grouped 1-4-5-2-1 by dashes or spaces as printed on the ID card, and not part of a
# longer run of digits...
_THIRTEEN_DIGITS = re.compile(r"(?<!\d)(\d)[- ]?(\d{4})[- ]?(\d{5})[- ]?(\d{2})[- ]?(\d)(?!\d)")
# ...except right after an escape that ends in a digit (a URL's ``%20``, a JSON or Python
# ``\u0020`` / ``\x20``): there the identifier starts after the escape. (A second pattern, run
# only on text with an escape, keeps the common case as fast as before.)
_AFTER_ESCAPE = re.compile(
    r"(?:(?<=%[0-9A-Fa-f]{2})|(?<=\\x[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4}))"
    r"(\d)[- ]?(\d{4})[- ]?(\d{5})[- ]?(\d{2})[- ]?(\d)(?!\d)"
)
_PLAIN = (str, int, float, bool)  # written as they are; anything else as str(value)
_to_json = json.JSONEncoder(ensure_ascii=False).encode
_SHORTEST_IDENTIFIER = 13  # characters: shorter text cannot hold a 13-digit identifier
_SMALLEST_IDENTIFIER = 10**12  # a smaller integer has fewer than 13 digits
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def mask_identifier(identifier: str) -> str:
    """Mask a person or juristic identifier for logs and reports.

    A 13-digit Thai identifier (with or without dashes) keeps its first five digits and its
    check digit: ``"1234567890121"`` -> ``"1-2345-xxxxx-xx-1"``. Anything else (a passport
    number) keeps only its first and last character.
    """
    digits = identifier.replace("-", "").replace(" ", "")
    if len(digits) == 13 and digits.isascii() and digits.isdigit():
        return f"{digits[0]}-{digits[1:5]}-xxxxx-xx-{digits[12]}"
    if len(identifier) <= 2:
        return "x" * len(identifier)
    return identifier[0] + "x" * (len(identifier) - 2) + identifier[-1]


def mask_text(text: str) -> str:
    """Mask every 13-digit identifier (plain, or grouped by dashes or spaces) in free text,
    also one right after a URL (``%20``) or JSON (``\\u0020``) escape."""
    masked = _THIRTEEN_DIGITS.sub(_masked, text)
    if "%" in masked or "\\" in masked:
        masked = _AFTER_ESCAPE.sub(_masked, masked)
    return masked


def _masked(match: re.Match[str]) -> str:
    return f"{match[1]}-{match[2]}-xxxxx-xx-{match[5]}"


def current_trace_id() -> str:
    """Hex trace id of the current span, else the per-call id set by the server, else ``""``."""
    context = _otel_trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    return trace_id_var.get()


class IdentifierMaskingFilter(logging.Filter):
    """Rewrites a record's message and extras with :func:`mask_text`: strings, integers that
    hold an identifier, and anything else as the text the log line shows of it (``str``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # Arguments that do not fit the format: a log call must not fail its caller, and
            # logging's own report of the error would print the arguments unmasked.
            message = f"{record.msg} (arguments that do not fit: {record.args!r})"
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        fields = record.__dict__
        for key in fields.keys() - _STANDARD_ATTRS:
            value = fields[key]
            if isinstance(value, str):
                if len(value) >= _SHORTEST_IDENTIFIER:
                    fields[key] = mask_text(value)
            elif isinstance(value, bool | float) or value is None:
                pass
            elif isinstance(value, int):
                if abs(value) >= _SMALLEST_IDENTIFIER and (text := str(value)) != (
                    masked := mask_text(text)
                ):
                    fields[key] = masked
            else:  # a dict, a list, an object: written as str(value), identifiers and all
                fields[key] = mask_text(str(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, trace id, extras."""

    def __init__(self, service: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.service = service
        self.static_fields = dict(fields or {})  # on every line (a worker's number)
        self._second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def _time(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds (``2026-01-02T03:04:05.678+00:00``)."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = (
                second,
                dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            )
            self._second = cached
        return f"{cached[1]}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        line: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": fields.get("trace_id") or current_trace_id(),
            **self.static_fields,
        }
        for key, value in fields.items():  # the extras, in the order they were given
            if key not in _STANDARD_ATTRS and key not in line:
                line[key] = (
                    value if type(value) in _PLAIN or isinstance(value, _PLAIN) else str(value)
                )
        if record.exc_info:
            line["exception"] = mask_text(self.formatException(record.exc_info))
        return _to_json(line)


def setup_logging(
    service: str, level: str = "INFO", stream: Any = None, *, fields: dict[str, Any] | None = None
) -> None:
    """Send all stdlib logging to ``stream`` (stderr) as masked JSON lines. Idempotent.

    ``fields`` are added to every line (``{"worker": 1}`` in a worker process of ``serve``).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service, fields))
    handler.addFilter(IdentifierMaskingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_egov", False):
            root.removeHandler(old)
    handler._egov = True  # type: ignore[attr-defined]
    # The lines carry no process name: spare every record looking it up.
    logging.logMultiprocessing = False
    root.addHandler(handler)
    root.setLevel(level.upper())
