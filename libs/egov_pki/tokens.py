"""The shared verifier for ID and access tokens issued by the identity service (fail closed).

Every service verifies bearer tokens with :class:`TokenVerifier`; it is deliberately stricter than
a JWT library's defaults (DESIGN.md, "Tokens fail closed"):

- the token's size is capped before anything is parsed; only JWS compact form (three parts);
- base64url without padding, JSON objects without duplicate member names;
- ``alg`` must be in the allow-list (ES256, RS256) AND equal the ``alg`` of the key it names;
- ``kid`` must resolve in OUR JWKS (identity's JWKS URL or a static set); keys or URLs named in
  the header (``jku``, ``x5u``, ``jwk``, ``x5c``) are refused outright, never fetched;
- any ``crit`` header is refused (we understand no extensions, RFC 7515 section 4.1.11);
- ``exp``, ``iat``, ``iss``, ``aud``, ``sub`` are required; dates are JSON numbers (not strings,
  not booleans); a small leeway absorbs clock skew.

Failures raise :class:`egov_common.errors.Unauthenticated` with a distinct reason (``TOKEN_*``);
an unreachable JWKS when a key is needed raises ``Unavailable("JWKS_UNAVAILABLE")``.

A client presents the same access token on every call until it expires, and the signature check
costs more than the rest of a registry lookup, so a verifier remembers the tokens it verified
(by their SHA-256, at most ``VERIFIED_TOKENS_REMEMBERED``). A remembered token is accepted again
only while our JWKS still publishes the very key it was verified with, and its dates (``exp``,
``nbf``, ``iat``, ``auth_time`` against ``max_age_seconds``) are checked against the clock on
every call. A refused token is never remembered.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from egov_common.auth import Caller, CallerKind
from egov_common.errors import Unauthenticated, Unavailable
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

__all__ = [
    "AAL_BY_ACR",
    "ACCESS_TOKEN_TYPE",
    "ALLOWED_ALGORITHMS",
    "BearerTokenVerifier",
    "HttpJwks",
    "JwksSource",
    "Representation",
    "StaticJwks",
    "TokenVerifier",
    "VerifiedToken",
    "acr_for_aal",
]

#: Signature algorithms a token may use; anything else (``none``, ``HS256``...) is refused.
ALLOWED_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256")
#: The header ``typ`` of identity's access tokens (RFC 9068, section 2.1); ID tokens say ``JWT``.
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)

#: ``acr`` values the identity service issues, by authenticator assurance level.
AAL_BY_ACR: Mapping[str, int] = {
    "urn:egov:aal:1": 1,
    "urn:egov:aal:2": 2,
    "urn:egov:aal:3": 3,
}

#: Header members that name keys or key locations: never trusted, so refused.
_REFUSED_HEADER_MEMBERS = frozenset({"jku", "x5u", "jwk", "x5c"})
_DEFAULT_MAX_BYTES = 8192
_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ALGORITHM_IMPL = {
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
}
_MIN_RSA_BITS = 2048
#: A JWKS (or discovery document) larger than this is refused: ours holds a handful of keys.
_DEFAULT_MAX_JWKS_BYTES = 64 * 1024
#: Tokens a verifier remembers as verified (by SHA-256), so a client's next call with the same
#: token costs no signature check. Each entry is a few hundred bytes.
VERIFIED_TOKENS_REMEMBERED = 4096


def acr_for_aal(aal: int) -> str:
    """The ``acr`` value the identity service writes for an authenticator assurance level."""
    return f"urn:egov:aal:{aal}"


@dataclass(frozen=True, slots=True)
class Representation:
    """"Person acting for a juristic person", from a token-exchange token.

    ``actor`` is the ``act.sub`` (the person), ``juristic_person`` the namespaced company
    identifier (``TH-JUR:...``), ``powers`` what the grant allows (e.g. ``sign``).
    """

    actor: str
    juristic_person: str
    role: str
    powers: frozenset[str]
    grant_id: str


def _read_only(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError("a verified token's claims are read-only")


class _FrozenObject(dict[str, Any]):
    """A JSON object inside a verified token's claims. Every call that presents a remembered
    token shares its claims, so nobody may change them; they stay a ``dict`` all the same, for
    ``isinstance`` checks and ``json``. A copy (``dict(...)``, ``copy``) may be changed."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self),)


class _FrozenArray(list[Any]):
    """A JSON array inside a verified token's claims: a ``list`` nobody may change."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = clear = extend = insert = pop = remove = reverse = sort = _read_only

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (list(self),)


def _frozen(value: Any) -> Any:
    """``value`` (decoded JSON) with every object and array in it read-only."""
    if isinstance(value, dict):
        frozen = _FrozenObject()
        for key, item in value.items():
            dict.__setitem__(frozen, key, _frozen(item))
        return frozen
    if isinstance(value, list):
        return _FrozenArray(_frozen(item) for item in value)
    return value


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature and claims passed every check. ``claims`` is the raw payload,
    read-only to its depth (one object serves every call that presents the token again)."""

    subject: str
    issuer: str
    audience: tuple[str, ...]
    expires_at: float
    issued_at: float
    scopes: frozenset[str]
    client_id: str | None
    token_type: str | None  # header ``typ``: ``at+jwt`` for access tokens, ``JWT`` for ID tokens
    acr: str | None
    aal: int | None
    amr: tuple[str, ...]
    auth_time: float | None
    ial: str | None  # verified_claims.verification.assurance_level (e.g. "2.3")
    identifier: str | None  # namespaced identifier ("TH-PID:...") when the client may see it
    agency: str | None  # agency of a machine client (client_credentials)
    act: Mapping[str, Any] | None  # RFC 8693 actor claim
    representation: Representation | None
    claims: Mapping[str, Any] = field(repr=False)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class _Remembered:
    """A verified token, with what must still hold when it comes again: the JWK it was verified
    with is still our JWKS's key for its ``kid``, and its dates are valid at that moment."""

    token: VerifiedToken
    not_before: float | None
    kid: str
    jwk: Mapping[str, Any]


class JwksSource(Protocol):
    """Where the verifier finds public keys by ``kid``: OUR identity service's JWKS only."""

    def key(self, kid: str) -> Mapping[str, Any] | None:
        """The JWK with this ``kid``, or ``None`` when the set does not have it."""
        ...


def _index_jwks(jwks: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(jwks, Mapping):
        raise ValueError("JWKS is not a JSON object")
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError("JWKS has no 'keys' array")
    out: dict[str, Mapping[str, Any]] = {}
    for jwk in keys:
        if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str):
            out[jwk["kid"]] = jwk
    return out


class StaticJwks:
    """A fixed key set (tests, or a JWKS pinned in configuration)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = _index_jwks(jwks)

    def key(self, kid: str) -> Mapping[str, Any] | None:
        return self._keys.get(kid)


class HttpJwks:
    """The identity service's JWKS fetched over HTTP(S), cached.

    The set is refreshed after ``cache_seconds``, and on an unknown ``kid``; never more than once
    per ``min_refresh_seconds`` (so neither a flood of made-up kids nor an identity service that is
    down turns every request into a fetch). A fetch failure keeps the cached keys, but only for
    ``max_stale_seconds`` after the last good fetch: a key identity has withdrawn (rotated out, or
    compromised) is not trusted for ever by a service that can no longer reach identity to learn
    so. With nothing usable it raises ``Unavailable`` (``JWKS_UNAVAILABLE``, or ``JWKS_STALE``);
    so it does for a ``kid`` it does not hold while its last fetch failed, since identity may
    have published that key meanwhile (a key replaced at once): the token may be good.
    A fetch reads at most ``max_response_bytes`` and gives up after ``timeout_seconds`` in all,
    however slowly the server answers.

    One fetch at a time (single flight), made by the check that found it due, without a lock
    held: meanwhile every other check whose key is cached (and not stale) goes on with it, and
    a check whose answer depends on the fetch (a kid not cached, nothing fetched yet, keys
    stale) waits for that fetch and decides on its result, without fetching again.

    :meth:`discover` finds the JWKS URL the standard way, from the issuer's OpenID Provider
    metadata (``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must equal ours).
    """

    @classmethod
    def discover(cls, issuer: str, **kwargs: Any) -> HttpJwks:
        """The JWKS that ``issuer`` publishes as ``jwks_uri`` in its discovery document, looked
        up on first use (a service may start before identity answers)."""
        jwks = cls("", **kwargs)
        jwks._issuer = issuer
        return jwks

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        max_stale_seconds: float = 3600.0,
        timeout_seconds: float = 5.0,
        max_response_bytes: int = _DEFAULT_MAX_JWKS_BYTES,
        client: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._issuer: str | None = None
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._max_stale_seconds = max(max_stale_seconds, cache_seconds)
        self._timeout_seconds = timeout_seconds
        self._max_response_bytes = max_response_bytes
        self._client = client or httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._fetched = threading.Condition(self._lock)  # notified when a fetch ends
        #: (pid, thread id) of the fetch in flight; a pid other than ours: forked mid-fetch.
        self._fetching: tuple[int, int] | None = None
        self._keys: dict[str, Mapping[str, Any]] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_failure: Exception | None = None

    def _get_json(self, url: str, deadline: float) -> Any:
        """The JSON body at ``url``, read in chunks: at most ``max_response_bytes``, and no later
        than ``deadline`` (httpx's timeouts bound each read, not the whole response)."""
        with self._client.stream("GET", url, headers={"accept": "application/json"}) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._max_response_bytes:
                    raise ValueError(f"{url} answered more than {self._max_response_bytes} bytes")
                if self._monotonic() > deadline:
                    raise ValueError(f"{url} did not answer within {self._timeout_seconds} s")
        return json.loads(bytes(body))

    def _discover(self, deadline: float) -> str:
        """OpenID Connect Discovery 1.0, section 4: the metadata's ``issuer`` is exactly ours."""
        assert self._issuer is not None
        metadata_url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata = self._get_json(metadata_url, deadline)
        if not isinstance(metadata, dict) or metadata.get("issuer") != self._issuer:
            raise ValueError("discovery document names another issuer")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError("discovery document has no jwks_uri")
        return jwks_uri

    def _fetch_in_flight_locked(self) -> bool:
        return self._fetching is not None and self._fetching[0] == os.getpid()

    def _fetch(self, started: float, url: str) -> None:
        """Fetch the set, the lock NOT held, as the one fetch in flight (the caller marked it,
        under the lock); on any failure keep what we had (a garbage answer is no key set)."""
        deadline = started + self._timeout_seconds
        keys: dict[str, Mapping[str, Any]] | None = None
        failure: Exception | None = None
        try:
            if not url:
                url = self._discover(deadline)
            keys = _index_jwks(self._get_json(url, deadline))
        except (httpx.HTTPError, ValueError, RecursionError) as exc:
            failure = exc
        finally:
            with self._lock:
                if keys is not None:
                    self._url = url
                    self._keys = keys
                    self._fetched_at = started
                    self._last_failure = None
                elif failure is not None:
                    self._last_failure = failure
                self._fetching = None
                self._fetched.notify_all()

    def _fetch_or_wait_locked(self) -> None:
        """Make the fetch (the lock released meanwhile), or wait for the one in flight."""
        if self._fetch_in_flight_locked():
            while self._fetch_in_flight_locked():
                self._fetched.wait()
            return
        self._fetching = (os.getpid(), threading.get_ident())
        started = self._last_attempt = self._monotonic()
        url = self._url
        self._lock.release()
        try:
            self._fetch(started, url)
        finally:
            self._lock.acquire()

    def key(self, kid: str) -> Mapping[str, Any] | None:
        with self._lock:
            now = self._monotonic()
            may_fetch = (
                self._last_attempt is None
                or now - self._last_attempt >= self._min_refresh_seconds
            )
            cached = self._usable_locked(kid, now)
            if may_fetch and (
                self._fetched_at is None or now - self._fetched_at > self._cache_seconds
            ):
                if cached is not None and self._fetch_in_flight_locked():
                    return cached  # another check is refreshing: go on with the key we have
                self._fetch_or_wait_locked()
                may_fetch = False
                now = self._monotonic()
            elif cached is None and self._fetch_in_flight_locked():
                self._fetch_or_wait_locked()  # its result decides this check
                may_fetch = False
                now = self._monotonic()
            if self._fetched_at is None:
                raise Unavailable(
                    "JWKS_UNAVAILABLE", "identity JWKS could not be fetched"
                ) from self._last_failure
            if now - self._fetched_at > self._max_stale_seconds:
                raise Unavailable(
                    "JWKS_STALE",
                    f"identity JWKS not refreshed for over {self._max_stale_seconds:.0f} s",
                ) from self._last_failure
            found = self._keys.get(kid)
            if found is None and may_fetch:
                self._fetch_or_wait_locked()
                found = self._keys.get(kid)
            if found is None and self._last_failure is not None:  # the last fetch failed
                raise Unavailable(
                    "JWKS_UNAVAILABLE", "identity JWKS could not be fetched to find the token's key"
                ) from self._last_failure
            return found

    def _usable_locked(self, kid: str, now: float) -> Mapping[str, Any] | None:
        """The cached key for ``kid`` if the cache may still be trusted (not stale)."""
        if self._fetched_at is None or now - self._fetched_at > self._max_stale_seconds:
            return None
        return self._keys.get(kid)


def _media_type(typ: str) -> str:
    """A header ``typ`` as the media type it names: case-insensitive, ``application/`` implied
    (RFC 7515, section 4.1.9), so ``at+jwt`` and ``application/AT+JWT`` are one type."""
    lowered = typ.lower()
    return lowered.removeprefix("application/") if "/" in lowered else lowered


def _refuse(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(reason, message)


def _b64decode(segment: str) -> bytes:
    if not segment or not set(segment) <= _B64URL_ALPHABET or len(segment) % 4 == 1:
        raise _refuse("TOKEN_MALFORMED", "token segment is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _refuse("TOKEN_MALFORMED", "token segment is not base64url") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _refuse("TOKEN_MALFORMED", "duplicate JSON member in token")
        out[key] = value
    return out


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _refuse("TOKEN_MALFORMED", f"token {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise _refuse("TOKEN_MALFORMED", f"token {what} is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    if name not in claims:
        if required:
            raise _refuse("TOKEN_CLAIM_MISSING", f"token has no '{name}' claim")
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse("TOKEN_CLAIM_INVALID", f"'{name}' is not a numeric date")
    try:
        date = float(value)  # a JSON integer has no bound: 10**400 overflows
    except OverflowError:
        date = math.inf
    if not math.isfinite(date):
        raise _refuse("TOKEN_CLAIM_INVALID", f"'{name}' is not a numeric date")
    return date


def _public_key(jwk: Mapping[str, Any], alg: str) -> Any:
    """Load a JWK for ``alg``; the key's own ``alg``/``kty``/curve/size must agree with it."""
    key_alg = jwk.get("alg")
    if key_alg is not None and key_alg != alg:
        raise _refuse("TOKEN_ALGORITHM_NOT_ALLOWED", "token alg does not match the key's alg")
    if jwk.get("use", "sig") != "sig":
        raise _refuse("TOKEN_KEY_UNKNOWN", "key is not a signature key")
    key_ops = jwk.get("key_ops", ["verify"])
    if not isinstance(key_ops, list) or "verify" not in key_ops:  # RFC 7517 section 4.3
        raise _refuse("TOKEN_KEY_UNKNOWN", "key is not for verifying signatures")
    if any(name in jwk for name in ("d", "p", "q", "k")):
        raise _refuse("TOKEN_KEY_UNKNOWN", "JWKS entry is not a public key")
    try:
        if alg == "ES256":
            if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                raise _refuse("TOKEN_ALGORITHM_NOT_ALLOWED", "ES256 needs a P-256 key")
            key = ECAlgorithm.from_jwk(dict(jwk))
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise _refuse("TOKEN_KEY_UNKNOWN", "JWKS entry is not a public key")
            return key
        if jwk.get("kty") != "RSA":
            raise _refuse("TOKEN_ALGORITHM_NOT_ALLOWED", "RS256 needs an RSA key")
        rsa_key = RSAAlgorithm.from_jwk(dict(jwk))
        if not isinstance(rsa_key, rsa.RSAPublicKey) or rsa_key.key_size < _MIN_RSA_BITS:
            raise _refuse("TOKEN_KEY_UNKNOWN", "RSA key is not an acceptable public key")
        return rsa_key
    except Unauthenticated:
        raise
    except Exception as exc:  # a malformed JWK in our own set: refuse, never fall through
        raise _refuse("TOKEN_KEY_UNKNOWN", "JWKS entry could not be loaded") from exc


class TokenVerifier:
    """Verifies JWS-compact tokens from one issuer for one or more audiences.

    ``audiences``: the token's ``aud`` must contain at least one of them (a service's own audience,
    e.g. ``urn:egov:keys``, or a portal's client id for ID tokens). ``token_types`` optionally
    restricts the header ``typ`` (``{"at+jwt"}`` for RFC 9068 access tokens).
    ``clock`` returns seconds since the epoch.
    """

    def __init__(
        self,
        jwks: JwksSource,
        *,
        issuer: str,
        audiences: Collection[str],
        leeway_seconds: float = 30.0,
        max_token_bytes: int = _DEFAULT_MAX_BYTES,
        allowed_algorithms: Collection[str] = ALLOWED_ALGORITHMS,
        token_types: Collection[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        if not audiences:
            raise ValueError("at least one audience is required")
        unknown = set(allowed_algorithms) - set(ALLOWED_ALGORITHMS)
        if unknown:
            raise ValueError(f"algorithms not supported: {sorted(unknown)}")
        self._jwks = jwks
        self._issuer = issuer
        self._audiences = frozenset(audiences)
        self._leeway = leeway_seconds
        self._max_bytes = max_token_bytes
        self._algorithms = frozenset(allowed_algorithms)
        self._token_types = (
            frozenset(_media_type(t) for t in token_types) if token_types is not None else None
        )
        self._clock = clock
        self._key_cache: dict[tuple[str, str, str], Any] = {}
        self._key_cache_lock = threading.Lock()
        self._verified: dict[bytes, _Remembered] = {}
        self._verified_lock = threading.Lock()

    def verify(self, token: str | bytes, *, max_age_seconds: float | None = None) -> VerifiedToken:
        """Verify ``token`` and return its claims.

        ``max_age_seconds``: also require ``auth_time`` no older than this (a "fresh" login).
        Raises ``Unauthenticated`` with a ``TOKEN_*`` reason, or ``Unavailable`` (JWKS).
        """
        if isinstance(token, bytes):
            if len(token) > self._max_bytes:
                raise _refuse("TOKEN_TOO_LARGE", "token exceeds the size limit")
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError as exc:
                raise _refuse("TOKEN_MALFORMED", "token is not ASCII") from exc
        if not isinstance(token, str):
            raise _refuse("TOKEN_MALFORMED", "token is not a string")
        if len(token) > self._max_bytes:
            raise _refuse("TOKEN_TOO_LARGE", "token exceeds the size limit")
        if not token.isascii():
            raise _refuse("TOKEN_MALFORMED", "token is not ASCII")
        digest = hashlib.sha256(token.encode("ascii")).digest()
        recalled = self._recall(digest, max_age_seconds)
        if recalled is not None:
            return recalled
        parts = token.split(".")
        if len(parts) != 3:
            raise _refuse("TOKEN_MALFORMED", "token is not a JWS in compact form")
        header_b64, payload_b64, signature_b64 = parts
        header = _json_object(_b64decode(header_b64), "header")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _refuse("TOKEN_ALGORITHM_NOT_ALLOWED", "token alg is not allowed")
        if _REFUSED_HEADER_MEMBERS & header.keys():
            raise _refuse("TOKEN_HEADER_REFUSED", "token header names a key or key URL")
        if "crit" in header:
            raise _refuse("TOKEN_CRIT_UNSUPPORTED", "token has critical header extensions")
        if "b64" in header or "zip" in header or "enc" in header:
            raise _refuse("TOKEN_HEADER_REFUSED", "token header uses an unsupported feature")
        typ = header.get("typ")
        if typ is not None and not isinstance(typ, str):
            raise _refuse("TOKEN_MALFORMED", "token typ is not a string")
        if self._token_types is not None and (
            typ is None or _media_type(typ) not in self._token_types
        ):
            raise _refuse("TOKEN_TYPE_MISMATCH", "token type is not accepted here")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise _refuse("TOKEN_KEY_UNKNOWN", "token names no key id")

        jwk, key = self._key_for(kid, alg)
        signature = _b64decode(signature_b64)
        signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
        try:
            valid = _ALGORITHM_IMPL[alg].verify(signing_input, key, signature)
        except Exception:  # malformed signature encodings are just invalid signatures
            valid = False
        if not valid:
            raise _refuse("TOKEN_SIGNATURE_INVALID", "token signature does not verify")

        claims = _json_object(_b64decode(payload_b64), "payload")
        verified = self._check_claims(claims, typ, max_age_seconds)
        not_before = _numeric_date(claims, "nbf", required=False)
        self._remember(digest, _Remembered(verified, not_before, kid, jwk))
        return verified

    def _recall(self, digest: bytes, max_age_seconds: float | None) -> VerifiedToken | None:
        """The token verified before under this digest, if its key is still the one our JWKS
        publishes for its ``kid``; its dates are checked against the clock again."""
        remembered = self._verified.get(digest)
        if remembered is None:
            return None
        if self._jwks.key(remembered.kid) != remembered.jwk:  # withdrawn or replaced since
            with self._verified_lock:
                self._verified.pop(digest, None)
            return None
        token = remembered.token
        try:
            self._check_dates(token.expires_at, token.issued_at, remembered.not_before,
                              token.auth_time, max_age_seconds)
        except Unauthenticated:
            if self._clock() >= token.expires_at + self._leeway:
                with self._verified_lock:
                    self._verified.pop(digest, None)
            raise
        return token

    def _remember(self, digest: bytes, remembered: _Remembered) -> None:
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_TOKENS_REMEMBERED:
                cutoff = self._clock() - self._leeway
                self._verified = {
                    d: r for d, r in self._verified.items() if r.token.expires_at > cutoff
                }
                if len(self._verified) >= VERIFIED_TOKENS_REMEMBERED:
                    self._verified.clear()
            self._verified[digest] = remembered

    def _key_for(self, kid: str, alg: str) -> tuple[Mapping[str, Any], Any]:
        """The JWK our JWKS publishes for ``kid``, and its public key for ``alg``."""
        jwk = self._jwks.key(kid)
        if jwk is None:
            raise _refuse("TOKEN_KEY_UNKNOWN", "token key id is not in the issuer's JWKS")
        cache_key = (kid, alg, json.dumps(dict(jwk), sort_keys=True))
        with self._key_cache_lock:
            cached = self._key_cache.get(cache_key)
        if cached is not None:
            return jwk, cached
        key = _public_key(jwk, alg)
        with self._key_cache_lock:
            if len(self._key_cache) > 64:
                self._key_cache.clear()
            self._key_cache[cache_key] = key
        return jwk, key

    def _check_claims(
        self, claims: dict[str, Any], typ: str | None, max_age_seconds: float | None
    ) -> VerifiedToken:
        exp = _numeric_date(claims, "exp", required=True)
        iat = _numeric_date(claims, "iat", required=True)
        nbf = _numeric_date(claims, "nbf", required=False)
        auth_time = _numeric_date(claims, "auth_time", required=False)
        assert exp is not None and iat is not None
        self._check_dates(exp, iat, nbf, auth_time, max_age_seconds)

        iss = claims.get("iss")
        if not isinstance(iss, str):
            raise _refuse("TOKEN_CLAIM_MISSING", "token has no 'iss' claim")
        if iss != self._issuer:
            raise _refuse("TOKEN_ISSUER_MISMATCH", "token is from another issuer")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _refuse("TOKEN_CLAIM_MISSING", "token has no 'sub' claim")
        aud_claim = claims.get("aud")
        if isinstance(aud_claim, str):
            audience: tuple[str, ...] = (aud_claim,)
        elif (
            isinstance(aud_claim, list)
            and aud_claim
            and all(isinstance(a, str) for a in aud_claim)
        ):
            audience = tuple(aud_claim)
        elif aud_claim is None:
            raise _refuse("TOKEN_CLAIM_MISSING", "token has no 'aud' claim")
        else:
            raise _refuse("TOKEN_CLAIM_INVALID", "'aud' is not a string or list of strings")
        if not self._audiences.intersection(audience):
            raise _refuse("TOKEN_AUDIENCE_MISMATCH", "token is not meant for this audience")

        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise _refuse("TOKEN_CLAIM_INVALID", "'scope' is not a string")
        acr = _optional_str(claims, "acr")
        amr_claim = claims.get("amr", [])
        if not isinstance(amr_claim, list) or not all(isinstance(a, str) for a in amr_claim):
            raise _refuse("TOKEN_CLAIM_INVALID", "'amr' is not a list of strings")
        act = claims.get("act")
        if act is not None and not (isinstance(act, dict) and isinstance(act.get("sub"), str)):
            raise _refuse("TOKEN_CLAIM_INVALID", "'act' is not an actor object")
        return VerifiedToken(
            subject=sub,
            issuer=iss,
            audience=audience,
            expires_at=exp,
            issued_at=iat,
            scopes=frozenset(scope.split()),
            client_id=_optional_str(claims, "client_id"),
            token_type=typ,
            acr=acr,
            aal=AAL_BY_ACR.get(acr) if acr is not None else None,
            amr=tuple(amr_claim),
            auth_time=auth_time,
            ial=_ial(claims),
            identifier=_optional_str(claims, "identifier"),
            agency=_optional_str(claims, "agency"),
            act=_frozen(act),
            representation=_representation(claims, act),
            # Shared by every call that presents this token again: read-only to its depth.
            claims=MappingProxyType({name: _frozen(value) for name, value in claims.items()}),
        )

    def _check_dates(
        self,
        exp: float,
        iat: float,
        nbf: float | None,
        auth_time: float | None,
        max_age_seconds: float | None,
    ) -> None:
        now = self._clock()
        if now >= exp + self._leeway:
            raise _refuse("TOKEN_EXPIRED", "token has expired")
        if iat > now + self._leeway:
            raise _refuse("TOKEN_ISSUED_IN_FUTURE", "token is issued in the future")
        if nbf is not None and nbf > now + self._leeway:
            raise _refuse("TOKEN_NOT_YET_VALID", "token is not valid yet")
        if max_age_seconds is not None and (
            auth_time is None or now - auth_time > max_age_seconds + self._leeway
        ):
            raise _refuse("TOKEN_AUTHENTICATION_TOO_OLD", "the login behind this token is too old")


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refuse("TOKEN_CLAIM_INVALID", f"'{name}' is not a string")
    return value


def _ial(claims: Mapping[str, Any]) -> str | None:
    verified = claims.get("verified_claims")
    if not isinstance(verified, dict):
        return None
    verification = verified.get("verification")
    if not isinstance(verification, dict):
        return None
    level = verification.get("assurance_level")
    return level if isinstance(level, str) else None


def _representation(claims: Mapping[str, Any], act: Any) -> Representation | None:
    rep = claims.get("representation")
    if rep is None:
        return None
    if not isinstance(rep, dict) or not isinstance(act, dict):
        raise _refuse("TOKEN_CLAIM_INVALID", "'representation' needs an 'act' claim")
    juristic = rep.get("juristic_person")
    role = rep.get("role", "")
    powers = rep.get("powers", [])
    grant_id = rep.get("grant_id", "")
    if (
        not isinstance(juristic, str)
        or not isinstance(role, str)
        or not isinstance(grant_id, str)
        or not isinstance(powers, list)
        or not all(isinstance(p, str) for p in powers)
    ):
        raise _refuse("TOKEN_CLAIM_INVALID", "'representation' is malformed")
    return Representation(
        actor=str(act["sub"]),
        juristic_person=juristic,
        role=role,
        powers=frozenset(powers),
        grant_id=grant_id,
    )


class BearerTokenVerifier:
    """``egov_common.auth.TokenVerifier`` backed by :class:`TokenVerifier`: pass it to
    ``egov_common.server.serve(..., token_verifier=...)``.

    A token whose ``sub`` is its own ``client_id`` (client credentials) makes a ``client`` caller;
    any other a ``person`` caller (for a representation token, ``agency`` is the juristic person).
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def __call__(self, token: str, *, peer_service: str | None) -> Caller:
        verified = self._verifier.verify(token)
        machine = verified.client_id is not None and verified.subject == verified.client_id
        agency = verified.agency or (
            verified.representation.juristic_person if verified.representation else None)
        return Caller(
            kind=CallerKind.CLIENT if machine else CallerKind.PERSON,
            subject=verified.subject,
            scopes=verified.scopes,
            agency=agency,
            claims=verified.claims,
            peer_service=peer_service,
        )
