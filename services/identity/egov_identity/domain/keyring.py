"""Token signing keys: ES256 (signs by default) and RS256 (ID tokens of clients that ask for it).

Keys live in the database, private halves sealed with AES-256-GCM under the KEK, so every process
of the service signs with and publishes the same keys. Generation ``g`` of an algorithm signs from
``activates_at`` for ``rotation_seconds``; generation ``g + 1`` is created ``publish_ahead_seconds``
before that (relying parties' JWKS caches see it before it signs) and a retired key stays in the
JWKS until the longest-lived token it signed has expired. Two processes racing to create the
same generation collide on a unique constraint; the loser reloads.

Operators replace a suspected key at once with :meth:`KeyRing.rotate_immediately` (``python -m
egov_identity rotate-signing-key``): the successor signs from that moment, and the old keys are
either kept published until their tokens expire or withdrawn so that their tokens stop verifying.
Every process reloads the keys from the database at most a second after a change.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from egov_common.clock import Clock
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy.engine import Engine

from egov_identity.domain.secrets_box import SecretBox
from egov_identity.storage.tables import signing_keys

log = logging.getLogger(__name__)

ALGORITHMS = ("ES256", "RS256")
#: What an ID token can be signed with: every algorithm the ring keeps a signing key for. A
#: client chooses with ``id_token_signed_response_alg`` (OIDC Registration 1.0 section 2);
#: discovery's ``id_token_signing_alg_values_supported`` lists exactly these.
ID_TOKEN_ALGORITHMS: tuple[str, ...] = ALGORITHMS
#: The default of OIDC Registration is RS256; this platform signs ES256 unless asked.
DEFAULT_ID_TOKEN_ALGORITHM = "ES256"  # noqa: S105 - an algorithm name, not a secret
#: ``Cache-Control: max-age`` of the JWKS endpoint. A key must be published at least this
#: long before it signs, or a relying party's cached copy may lack it when its first token comes.
JWKS_MAX_AGE_SECONDS = 60
#: PyJWT's signature implementations (raw ``r || s`` for ES256, PKCS#1 v1.5 for RS256), used
#: directly: :meth:`KeyRing.sign` builds the JWS itself (see there).
_SIGNERS: dict[str, Any] = {"ES256": ECAlgorithm(ECAlgorithm.SHA256),
                            "RS256": RSAAlgorithm(RSAAlgorithm.SHA256)}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    generation: int
    public_jwk: dict[str, Any]
    activates_at: float
    retires_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class ImmediateRotation:
    """What :meth:`KeyRing.rotate_immediately` did (POSIX seconds)."""

    alg: str
    new_kid: str
    #: The keys that no longer sign: withdrawn from JWKS, or kept there until ``kept_until``.
    old_kids: tuple[str, ...]
    withdrawn: bool
    kept_until: float


class KeyRing:
    """Creates, rotates, publishes and uses the signing keys. Thread-safe."""

    def __init__(self, engine: Engine, box: SecretBox, clock: Clock, *,
                 rotation_seconds: float, publish_ahead_seconds: float,
                 max_token_lifetime_seconds: float) -> None:
        if publish_ahead_seconds >= rotation_seconds:
            raise ValueError("publish_ahead_seconds must be shorter than rotation_seconds")
        self._engine = engine
        self._box = box
        self._clock = clock
        self._rotation = rotation_seconds
        self._ahead = publish_ahead_seconds
        self._keep = max_token_lifetime_seconds
        self._lock = threading.Lock()
        self._private: dict[str, Any] = {}
        self._keys: list[SigningKey] = []
        self._checked_at = -1.0
        # alg -> (the key signing now, its opened private half); dropped whenever the keys are
        # reloaded, and only used inside the key's signing period.
        self._signing: dict[str, tuple[SigningKey, Any]] = {}
        # (kid, alg, typ) -> the encoded JWS header.
        self._headers: dict[tuple[str, str, str], str] = {}

    def after_fork(self) -> None:
        """In a forked worker: a fresh lock (the parent's may have been held by a thread that
        does not exist here). The keys and their opened private halves stay valid."""
        self._lock = threading.Lock()

    def _now(self) -> float:
        return float(self._clock.now().timestamp())

    def _load(self) -> None:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(signing_keys).where(
                signing_keys.c.expires_at > self._now())).mappings().all()
        self._signing = {}
        self._keys = sorted(
            (SigningKey(r["kid"], r["alg"], r["generation"], json.loads(r["public_jwk_json"]),
                        r["activates_at"], r["retires_at"], r["expires_at"]) for r in rows),
            key=lambda k: (k.alg, k.generation))

    def _new_row(self, alg: str, generation: int, activates_at: float) -> dict[str, Any]:
        kid = f"{alg.lower()}-{generation}-{secrets.token_hex(4)}"
        private: Any
        if alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
            public_jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public_jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        public_jwk.update(kid=kid, alg=alg, use="sig")
        der = private.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        retires = activates_at + self._rotation
        return dict(kid=kid, alg=alg, generation=generation,
                    public_jwk_json=json.dumps(public_jwk, sort_keys=True),
                    private_key_enc=self._box.seal(der, kid),
                    private_key_kek_id=self._box.current_kek_id, activates_at=activates_at,
                    retires_at=retires, expires_at=retires + self._keep)

    def _create(self, alg: str, generation: int, activates_at: float) -> None:
        row = self._new_row(alg, generation, activates_at)
        try:
            with self._engine.begin() as conn:
                conn.execute(signing_keys.insert().values(**row))
        except sa.exc.IntegrityError:
            return  # another process created this generation first: use theirs
        log.info("signing key created", extra={"kid": row["kid"], "alg": alg,
                                               "activates_at": activates_at,
                                               "kek_id": row["private_key_kek_id"]})

    def ensure(self, *, force: bool = False, now: float | None = None) -> None:
        """Create the current and next keys when due; cheap when nothing is due (the database
        is read at most once a second)."""
        if now is None:
            now = self._now()
        if not force and now - self._checked_at < 1.0:
            return
        with self._lock:
            if not force and now - self._checked_at < 1.0:
                return
            self._load()
            changed = False
            for alg in ALGORITHMS:
                mine = [k for k in self._keys if k.alg == alg]
                current = self._current(mine, now)
                if current is None:
                    last = max((k.generation for k in mine), default=-1)
                    self._create(alg, last + 1, now)
                    changed = True
                    continue
                has_next = any(k.generation > current.generation for k in mine)
                if not has_next and now >= current.retires_at - self._ahead:
                    self._create(alg, current.generation + 1, current.retires_at)
                    changed = True
            if changed:
                self._load()
            self._checked_at = now

    def rotate_now(self) -> str:
        """Publish the next ES256 key now; it starts signing ``publish_ahead_seconds`` later, so
        relying parties' caches hold it first (a planned early rotation; tests). For a suspected
        key see :meth:`rotate_immediately`. Returns its kid."""
        self.ensure(force=True)
        now = self._now()
        with self._lock:
            mine = [k for k in self._keys if k.alg == "ES256"]
            current = self._current(mine, now)
            assert current is not None
            with self._engine.begin() as conn:
                # Retire the current key when the next one activates.
                conn.execute(signing_keys.update().where(
                    signing_keys.c.kid == current.kid).values(
                    retires_at=now + self._ahead,
                    expires_at=now + self._ahead + self._keep))
                conn.execute(signing_keys.delete().where(
                    signing_keys.c.alg == "ES256",
                    signing_keys.c.generation > current.generation))
        self._create("ES256", current.generation + 1, now + self._ahead)
        with self._lock:
            self._load()
            return next(k.kid for k in self._keys
                        if k.alg == "ES256" and k.generation == current.generation + 1)

    def rotate_immediately(self, alg: str = "ES256", *, withdraw_old: bool = False
                           ) -> ImmediateRotation:
        """Replace the ``alg`` signing key now (operators: a suspected key). The new key is
        published and signs from now on; every older key of ``alg`` stops signing. With
        ``withdraw_old`` they also leave the JWKS at once, so the tokens they signed stop
        verifying as soon as a relying party refreshes its JWKS cache (that is the point when a
        key may be compromised); without it they stay published until those tokens have
        expired. A next key published ahead is replaced. Raises ``ValueError`` for an unknown
        ``alg``."""
        if alg not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {alg!r}; one of {', '.join(ALGORITHMS)}")
        for attempt in range(3):
            now = self._now()
            with self._engine.connect() as conn:
                rows = conn.execute(sa.select(
                    signing_keys.c.kid, signing_keys.c.generation, signing_keys.c.activates_at,
                    signing_keys.c.expires_at).where(signing_keys.c.alg == alg)).all()
            row = self._new_row(alg, max((r.generation for r in rows), default=-1) + 1, now)
            live = [r for r in rows if r.expires_at > now]
            signed = [r for r in live if r.activates_at <= now]
            ahead = [r.kid for r in live if r.activates_at > now]  # never signed: discard
            expiry = {r.kid: now if withdraw_old else min(r.expires_at, now + self._keep)
                      for r in signed}
            try:
                with self._engine.begin() as conn:
                    for kid, expires_at in expiry.items():
                        conn.execute(signing_keys.update().where(
                            signing_keys.c.kid == kid,
                            signing_keys.c.retires_at > now).values(retires_at=now))
                        conn.execute(signing_keys.update().where(
                            signing_keys.c.kid == kid).values(expires_at=expires_at))
                    if ahead:
                        conn.execute(signing_keys.delete().where(signing_keys.c.kid.in_(ahead)))
                    conn.execute(signing_keys.insert().values(**row))
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise
                continue  # another process created a key of this generation meanwhile
            break
        result = ImmediateRotation(alg=alg, new_kid=str(row["kid"]),
                                   old_kids=tuple(sorted(expiry)), withdrawn=withdraw_old,
                                   kept_until=max(expiry.values(), default=now))
        log.warning("signing key replaced immediately", extra={
            "alg": alg, "kid": result.new_kid, "old_kids": ",".join(result.old_kids),
            "withdrawn_from_jwks": withdraw_old, "kek_id": row["private_key_kek_id"]})
        with self._lock:
            self._load()
        return result

    def check_sealed(self) -> int:
        """Open the private half of every published key (start-up: a wrong or missing KEK fails
        here, not at the first login). Returns how many were opened. Raises
        :class:`~egov_identity.domain.secrets_box.KekUnknown` or
        :class:`~egov_identity.domain.secrets_box.SealedValueUnreadable` naming the kid."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(signing_keys.c.kid, signing_keys.c.private_key_enc)
                                .where(signing_keys.c.expires_at > self._now())).all()
        for kid, blob in rows:
            private = serialization.load_der_private_key(
                self._box.open(blob, kid, what=f"signing key {kid}"), password=None)
            with self._lock:
                self._private[kid] = private
        return len(rows)

    @staticmethod
    def _current(keys: list[SigningKey], now: float) -> SigningKey | None:
        live = [k for k in keys if k.activates_at <= now < k.retires_at]
        return max(live, key=lambda k: k.generation) if live else None

    def jwks(self) -> dict[str, Any]:
        """Every key not yet expired, including the next one before it signs."""
        self.ensure()
        with self._lock:
            return {"keys": [dict(k.public_jwk) for k in self._keys]}

    def key(self, kid: str) -> dict[str, Any] | None:
        """``egov_pki.tokens.JwksSource``: this process verifies its own tokens from the DB."""
        return next((k for k in self.jwks()["keys"] if k.get("kid") == kid), None)

    def signing_key(self, alg: str = "ES256") -> tuple[str, Any]:
        """The kid and private key that sign ``alg`` tokens now. The private half is opened
        (unsealed under the KEK) once per key and kept in memory."""
        now = self._now()
        self.ensure(now=now)
        active = self._signing.get(alg)
        if active is not None and active[0].activates_at <= now < active[0].retires_at:
            return active[0].kid, active[1]
        with self._lock:
            current = self._current([k for k in self._keys if k.alg == alg], now)
            if current is None:
                raise RuntimeError(f"no active {alg} key")
            private = self._private.get(current.kid)
        if private is None:
            with self._engine.connect() as conn:
                blob = conn.execute(sa.select(signing_keys.c.private_key_enc).where(
                    signing_keys.c.kid == current.kid)).scalar_one()
            private = serialization.load_der_private_key(
                self._box.open(blob, current.kid, what=f"signing key {current.kid}"),
                password=None)
        with self._lock:
            self._private[current.kid] = private
            if any(k is current for k in self._keys):  # not reloaded meanwhile
                self._signing[alg] = (current, private)
        return current.kid, private

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT", alg: str = "ES256") -> str:
        """A JWS in compact form (RFC 7515) over ``claims``, by the key signing ``alg`` now.

        The same bytes ``jwt.encode`` produces (header ``alg``, ``kid``, ``typ`` with sorted
        members; compact JSON; unpadded base64url), built here because PyJWT's per-call work
        around the signature (options, claim checks, header merging) cost as much as the ECDSA
        signature itself. The header of each key and type is encoded once."""
        kid, key = self.signing_key(alg)
        header = self._headers.get((kid, alg, typ))
        if header is None:
            header = _b64url(json.dumps({"alg": alg, "kid": kid, "typ": typ},
                                        separators=(",", ":"), sort_keys=True).encode())
            if len(self._headers) > 64:
                self._headers.clear()
            self._headers[(kid, alg, typ)] = header
        signing_input = header + "." + _b64url(
            json.dumps(claims, separators=(",", ":")).encode())
        signature = _SIGNERS[alg].sign(signing_input.encode("ascii"), key)
        return signing_input + "." + _b64url(signature)
