"""Authenticators: Argon2id passwords, TOTP (RFC 6238), brute-force throttling.

Lock-out counts failures per login name (hashed, whether or not an account has it) and per
client, so neither the message, the status nor the timing tells an attacker which accounts exist:
an unknown name costs one Argon2id verification against a dummy hash, like a known one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import struct
import urllib.parse
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from egov_common.errors import ResourceExhausted
from sqlalchemy.engine import Engine

from egov_identity.storage.tables import login_throttle

log = logging.getLogger(__name__)

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6


class Passwords:
    """Argon2id hashing (RFC 9106 parameters from settings; OWASP minimum by default)."""

    def __init__(self, *, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1):
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                      parallelism=parallelism)
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Constant work whether or not ``stored`` exists (no enumeration by timing)."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False


def totp_code(secret: bytes, step: int) -> str:
    """RFC 6238 TOTP (HMAC-SHA1, 6 digits) for time step ``step`` (RFC 4226 truncation)."""
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**TOTP_DIGITS).zfill(TOTP_DIGITS)


def totp_matching_step(secret: bytes, code: str, now: float, window: int = 1) -> int | None:
    """The time step (now +/- ``window`` steps) whose code equals ``code``, else ``None``."""
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    step = int(now // TOTP_STEP_SECONDS)
    for candidate in range(step - window, step + window + 1):
        if hmac.compare_digest(totp_code(secret, candidate), code):
            return candidate
    return None


def otpauth_uri(secret: bytes, account: str, issuer: str) -> str:
    label = urllib.parse.quote(f"{issuer}:{account}")
    query = urllib.parse.urlencode({
        "secret": base64.b32encode(secret).decode().rstrip("="), "issuer": issuer,
        "algorithm": "SHA1", "digits": TOTP_DIGITS, "period": TOTP_STEP_SECONDS})
    return f"otpauth://totp/{label}?{query}"


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5  # per login name
    client_max_failures: int = 50  # per client (password spraying across many names)
    window_seconds: float = 900.0
    lockout_seconds: float = 300.0


def account_key(username: str) -> str:
    return "account:" + hashlib.sha256(username.strip().casefold().encode()).hexdigest()


def client_key(client_id: str) -> str:
    return "client:" + hashlib.sha256(client_id.encode()).hexdigest()


class Throttle:
    """Failure counters in the database (shared by every process)."""

    def __init__(self, engine: Engine, policy: ThrottlePolicy) -> None:
        self._engine = engine
        self.policy = policy

    def check(self, key: str, now: float, reason: str) -> None:
        """Raise ``ResourceExhausted(reason)`` with ``retry_after`` while ``key`` is locked."""
        with self._engine.connect() as conn:
            locked_until = conn.execute(sa.select(login_throttle.c.locked_until).where(
                login_throttle.c.throttle_key == key)).scalar()
        if locked_until is not None and locked_until > now:
            log.warning("locked out", extra={"throttle": key.split(":", 1)[0],
                                             "key": key.split(":", 1)[1][:12]})
            raise ResourceExhausted(
                reason, "too many failed attempts; try again later",
                metadata={"retry_after": str(int(locked_until - now) + 1)})

    def fail(self, key: str, now: float) -> None:
        limit = (self.policy.client_max_failures if key.startswith("client:")
                 else self.policy.max_failures)
        t = login_throttle
        with self._engine.begin() as conn:
            updated = conn.execute(t.update().where(
                t.c.throttle_key == key, t.c.window_start > now - self.policy.window_seconds,
            ).values(failures=t.c.failures + 1)).rowcount
            if not updated:
                try:
                    with conn.begin_nested():
                        conn.execute(t.insert().values(throttle_key=key, failures=1,
                                                       window_start=now, locked_until=0.0))
                except sa.exc.IntegrityError:
                    conn.execute(t.update().where(t.c.throttle_key == key).values(
                        failures=1, window_start=now))
            conn.execute(t.update().where(
                t.c.throttle_key == key, t.c.failures >= limit,
            ).values(locked_until=now + self.policy.lockout_seconds, failures=0,
                     window_start=now))

    def reset(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(login_throttle.delete().where(login_throttle.c.throttle_key == key))
