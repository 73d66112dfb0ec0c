"""Client assertions of ``private_key_jwt`` clients (RFC 7523 section 3; OIDC Core 9).

A client authenticates at the token endpoint with a JWT it signed with a key of its registered
JWKS. :class:`ClientKeys` is that JWKS parsed once (the service keeps one per registered JWKS
text, so a re-registered client gets new keys); :func:`verify_assertion` checks one assertion
against it, with one pass over the token:

- at most :data:`MAX_ASSERTION_CHARS` ASCII characters, JWS compact form, unpadded canonical
  base64url, JSON objects without duplicate members;
- ``alg`` ES256 or RS256, equal to the key's own ``alg`` when the JWK names one, and matching
  the key type (ES256 needs P-256); ``kid``, when given, selects the key; no ``crit`` or
  unencoded (``b64``) payloads;
- ``iss`` and ``sub`` are the client id, ``aud`` names the issuer or the token endpoint, ``jti``
  is a string, ``exp`` is a number not past (with leeway) and at most an hour ahead, ``nbf``
  (when given) is not in the future;
- an assertion is used within :data:`MAX_AGE_SECONDS` of its ``iat``, or, without ``iat``, its
  ``exp`` is at most that far ahead. Client libraries sign assertions valid for an hour (authlib
  does, unasked) and send each once at once; bounding the use by ``iat`` keeps the window in
  which a ``jti`` must be remembered (:func:`replay_window_end`) at 10 minutes all the same.

The single use of ``jti`` is the caller's (it needs the database). Failures raise
``jwt.InvalidTokenError`` subclasses, which the service answers with ``INVALID_CLIENT``.
These checks are those PyJWT's ``decode`` made for the service before (with ``verify_iat``
off), plus the key-``alg`` match, number-typed dates, and the refusals of duplicate members,
``crit`` and ``b64``; the signature itself is PyJWT's ES256/RS256 implementation.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import get_default_algorithms

__all__ = ["MAX_AGE_SECONDS", "MAX_ASSERTION_CHARS", "MAX_LIFETIME_SECONDS", "ClientKey",
           "ClientKeys", "replay_window_end", "verify_assertion"]

MAX_ASSERTION_CHARS = 8192
#: How far ahead an assertion's ``exp`` may be (a long-lived assertion is a bearer credential).
MAX_LIFETIME_SECONDS = 3600
#: How long after its ``iat`` an assertion may be used (without ``iat``: its whole lifetime).
MAX_AGE_SECONDS = 600

_ALGORITHMS = {name: impl for name, impl in get_default_algorithms().items()
               if name in ("ES256", "RS256")}
_KEY_TYPES: dict[str, tuple[type, ...]] = {"ES256": (ec.EllipticCurvePublicKey,),
                                            "RS256": (rsa.RSAPublicKey,)}
_B64URL = frozenset(string.ascii_letters + string.digits + "-_")


@dataclass(frozen=True, slots=True)
class ClientKey:
    kid: str | None
    #: The JWK's ``alg``, if it names one.
    alg: str | None
    public_key: Any


class ClientKeys:
    """A client's registered JWKS, parsed once. Raises ``ValueError``/``KeyError``/
    ``jwt.PyJWTError`` for a set that is not a JWKS of public keys."""

    def __init__(self, jwks_json: str) -> None:
        keys: list[ClientKey] = []
        for jwk in json.loads(jwks_json)["keys"]:
            public = jwt.PyJWK(jwk).key
            if isinstance(public, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                public = public.public_key()  # a private JWK: only its public half verifies
            kid = jwk.get("kid")
            alg = jwk.get("alg")
            keys.append(ClientKey(kid if isinstance(kid, str) else None,
                                  alg if isinstance(alg, str) else None, public))
        self.keys: tuple[ClientKey, ...] = tuple(keys)

    def candidates(self, kid: str | None, alg: str) -> list[ClientKey]:
        """The keys an assertion with this header may be signed with."""
        return [k for k in self.keys
                if (kid is None or k.kid == kid) and (k.alg is None or k.alg == alg)
                and isinstance(k.public_key, _KEY_TYPES[alg])]


def _segment(text: str, what: str) -> bytes:
    if not text or len(text) % 4 == 1 or not _B64URL.issuperset(text):
        raise jwt.DecodeError(f"assertion {what} is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise jwt.DecodeError(f"assertion {what} is not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text.encode("ascii"):
        raise jwt.DecodeError(f"assertion {what} is not canonical base64url")
    return raw


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise jwt.DecodeError("duplicate JSON member in the assertion")
        out[key] = value
    return out


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw, object_pairs_hook=_unique)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise jwt.DecodeError(f"assertion {what} is not JSON") from None
    if not isinstance(value, dict):
        raise jwt.DecodeError(f"assertion {what} is not a JSON object")
    return value


def _date(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise jwt.DecodeError(f"assertion '{name}' is not a number")
    try:
        # a JSON integer has no bound: one beyond a float's range raises OverflowError
        number = float(value)
    except OverflowError:
        raise jwt.DecodeError(f"assertion '{name}' is out of range") from None
    if not math.isfinite(number):
        raise jwt.DecodeError(f"assertion '{name}' is not a number")
    return number


def replay_window_end(claims: dict[str, Any]) -> float:
    """Until when the assertion with these (verified) claims would be taken again: its ``jti``
    must be remembered that long, and no longer."""
    exp = float(claims["exp"])
    iat = claims.get("iat")
    return exp if iat is None else min(exp, float(iat) + MAX_AGE_SECONDS)


def verify_assertion(assertion: str, keys: ClientKeys, *, client_id: str,
                     audiences: Sequence[str], now: float, leeway: float) -> dict[str, Any]:
    """The claims of ``assertion`` once every check above passed."""
    if (not isinstance(assertion, str) or not assertion or len(assertion) > MAX_ASSERTION_CHARS
            or not assertion.isascii()):
        raise jwt.DecodeError("assertion missing or too large")
    parts = assertion.split(".")
    if len(parts) != 3:
        raise jwt.DecodeError("assertion is not a JWS in compact form")
    header = _object(_segment(parts[0], "header"), "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALGORITHMS:
        raise jwt.InvalidAlgorithmError("assertion alg is not ES256 or RS256")
    if "crit" in header or "b64" in header:
        raise jwt.InvalidTokenError("assertion header uses an extension")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise jwt.InvalidTokenError("assertion kid is not a string")
    candidates = keys.candidates(kid, alg)
    if not candidates:
        raise jwt.InvalidKeyError("no registered key for the assertion's kid and alg")
    signature = _segment(parts[2], "signature")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    implementation = _ALGORITHMS[alg]
    for key in candidates:
        try:
            public = implementation.prepare_key(key.public_key)  # ES256: a P-256 key only
            if implementation.verify(signing_input, public, signature):
                break
        except (jwt.InvalidKeyError, ValueError, TypeError):
            continue
    else:
        raise jwt.InvalidSignatureError("assertion signature does not verify")

    claims = _object(_segment(parts[1], "payload"), "payload")
    for name in ("exp", "iss", "sub", "aud", "jti"):
        if claims.get(name) is None:
            raise jwt.MissingRequiredClaimError(name)
    exp = _date(claims, "exp")
    assert exp is not None
    if exp <= now - leeway:
        raise jwt.ExpiredSignatureError("assertion has expired")
    if exp > now + MAX_LIFETIME_SECONDS:
        raise jwt.InvalidTokenError("assertion lives too long")
    iat = _date(claims, "iat")
    if iat is None:
        if exp > now + MAX_AGE_SECONDS:
            raise jwt.InvalidTokenError("an assertion without iat lives at most 10 minutes")
    elif iat > now + leeway:
        raise jwt.ImmatureSignatureError("assertion is issued in the future")
    elif iat + MAX_AGE_SECONDS <= now - leeway:
        raise jwt.ExpiredSignatureError("assertion was issued more than 10 minutes ago")
    nbf = _date(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise jwt.ImmatureSignatureError("assertion is not yet valid")
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise jwt.InvalidIssuerError("assertion iss and sub must be the client id")
    aud = claims["aud"]
    aud_list = [aud] if isinstance(aud, str) else aud
    if (not isinstance(aud_list, list) or not all(isinstance(a, str) for a in aud_list)
            or not any(a in aud_list for a in audiences)):
        raise jwt.InvalidAudienceError("assertion is not for this token endpoint")
    if not isinstance(claims["jti"], str) or "\x00" in claims["jti"]:
        # recorded as used: PostgreSQL stores no NUL in a text column
        raise jwt.InvalidTokenError("assertion jti is not a string without NUL")
    return claims
