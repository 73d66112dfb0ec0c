"""The token endpoint's fast path keeps every check: client assertions (RFC 7523) refused for
each defect, keys replaced when a client's JWKS changes, tokens signed as PyJWT would sign
them, and codes and refresh tokens single use under concurrent redemption."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from egov_common.errors import EgovError, InvalidArgument, ResourceExhausted, Unauthenticated
from egov_identity.domain import model as m
from egov_identity.domain import service as service_module
from egov_identity.storage import tables as t
from egov_pki.tokens import StaticJwks, TokenVerifier
from identity_world import (
    ISSUER,
    PASSWORD,
    MachineKey,
    World,
    enrol_login,
    register_machine,
    register_portal,
)
from jwt.algorithms import RSAAlgorithm

TOKEN_ENDPOINT = ISSUER + "/token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(world: World, **changes: Any) -> dict[str, Any]:
    now = int(world.service.now())
    claims: dict[str, Any] = {"iss": "agency-app", "sub": "agency-app", "aud": TOKEN_ENDPOINT,
                              "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _signed(key: Any, claims: dict[str, Any], alg: str = "ES256",
            headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "k1", **(headers or {})})


def _client_credentials(world: World, assertion: str) -> m.TokenResponse:
    return world.service.token(m.TokenRequest(
        grant_type="client_credentials", client_id="agency-app", client_assertion=assertion,
        client_assertion_type=m.CLIENT_ASSERTION_TYPE))


def _raw_jws(header: dict[str, Any] | str, payload: dict[str, Any] | str, key: Any) -> str:
    """A compact JWS with exactly this header and payload text, validly signed (ES256)."""
    head = header if isinstance(header, str) else json.dumps(header)
    body = payload if isinstance(payload, str) else json.dumps(payload)
    signing_input = f"{_b64(head.encode())}.{_b64(body.encode())}"
    signature = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).sign(
        signing_input.encode(), key)
    return f"{signing_input}.{_b64(signature)}"


def _non_canonical(token: str) -> str:
    """The same bytes with the unused low bits of the signature's last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(token.rsplit(".", 1)[1]) % 4 == 2  # 64 bytes: 4 unused bits at the end
    return token[:-1] + alphabet[alphabet.index(token[-1]) | 1]


def _defects(world: World, key: MachineKey) -> dict[str, str]:
    k = key.key
    now = int(world.service.now())
    other = ec.generate_private_key(ec.SECP256R1())
    good = _signed(k, _claims(world))
    head, body, sig = good.split(".")
    return {
        "signed by another key": _signed(other, _claims(world)),
        "alg none": _b64(b'{"alg":"none","kid":"k1"}') + "." + body + ".",
        "alg HS256 with the public key as secret": _b64(
            b'{"alg":"HS256","kid":"k1"}') + "." + body + "." + sig,
        "unknown kid": _signed(k, _claims(world), headers={"kid": "k9"}),
        "expired": _signed(k, _claims(world, iat=now - 600, exp=now - 120)),
        "lives too long": _signed(k, _claims(world, exp=now + 3700)),
        "issued over 10 minutes ago": _signed(k, _claims(world, iat=now - 700, exp=now + 600)),
        "issued in the future": _signed(k, _claims(world, iat=now + 600, exp=now + 900)),
        "over 10 minutes without iat": _signed(k, _claims(world, iat=None, exp=now + 900)),
        "iat a string": _signed(k, _claims(world, iat=str(now))),
        # JSON integers have no bound: one beyond a float is refused, not a server error
        "iat too large for a float": _signed(k, _claims(world, iat=10**400)),
        "exp too large for a float": _signed(k, _claims(world, exp=10**400)),
        "nbf too large for a float": _signed(k, _claims(world, nbf=-(10**400))),
        "not yet valid": _signed(k, _claims(world, nbf=now + 600)),
        "for another audience": _signed(k, _claims(world, aud="https://elsewhere/token")),
        "audience list without ours": _signed(k, _claims(world, aud=["a", "b"])),
        "issuer is another client": _signed(k, _claims(world, iss="portal")),
        "subject is another client": _signed(k, _claims(world, sub="portal")),
        "no jti": _signed(k, _claims(world, jti=None)),
        "jti not a string": _signed(k, _claims(world, jti=12345)),
        "no exp": _signed(k, _claims(world, exp=None)),
        "exp a string": _signed(k, _claims(world, exp=str(now + 60))),
        "exp a boolean": _signed(k, _claims(world, exp=True)),
        "critical header": _signed(k, _claims(world), headers={"crit": ["exp"]}),
        "duplicate claim": _raw_jws({"alg": "ES256", "kid": "k1"}, json.dumps(
            _claims(world))[:-1] + ', "sub": "agency-app"}', k),
        "payload not an object": _raw_jws({"alg": "ES256", "kid": "k1"}, "[1]", k),
        "padded base64": f"{head}{'=' * (-len(head) % 4) or '===='}.{body}.{sig}",
        "not base64url": f"{head}.{body.replace('-', '+')}+.{sig}",
        "non-canonical base64url": _non_canonical(_signed(k, _claims(world))),
        "two segments": f"{head}.{body}",
        "tampered payload": f"{head}.{_b64(json.dumps(_claims(world)).encode())}.{sig}",
        "too large": _signed(k, _claims(world, pad="x" * 9000)),
        "not ASCII": good[:-2] + "é" + good[-1:],
        "empty": "",
    }


def test_each_defective_client_assertion_is_refused_as_invalid_client(world: World) -> None:
    key = MachineKey()
    register_machine(world, key)
    # Controls: the way the defective ones are made gives good assertions when nothing is wrong.
    assert _client_credentials(world, _signed(key.key, _claims(world)))
    assert _client_credentials(world, _raw_jws({"alg": "ES256", "kid": "k1"}, _claims(world),
                                               key.key))
    defects = _defects(world, key)
    refused = []
    for name, assertion in defects.items():
        world.service.throttle.reset(f"client:{hashlib.sha256(b'agency-app').hexdigest()}")
        try:
            _client_credentials(world, assertion)
        except Unauthenticated as exc:
            assert exc.reason == "INVALID_CLIENT", name
            refused.append(name)
    assert refused == list(defects)
    assert _client_credentials(world, key.assertion("agency-app", now=world.service.now))


def test_an_hour_long_assertion_is_taken_once_and_only_while_its_iat_is_fresh(
    world: World,
) -> None:
    # What client libraries send (authlib: exp an hour ahead). Its jti is remembered for the
    # 10 minutes it can be used, not the hour it claims.
    key = MachineKey()
    register_machine(world, key)
    now = int(world.service.now())
    assertion = _signed(key.key, _claims(world, exp=now + 3600))
    assert _client_credentials(world, assertion)
    with pytest.raises(Unauthenticated):
        _client_credentials(world, assertion)  # replayed
    with world.service.engine.connect() as conn:
        kept = conn.execute(sa.select(sa.func.max(t.used_jtis.c.expires_at))).scalar_one()
    assert kept == now + 600
    stale = _signed(key.key, _claims(world, iat=now, exp=now + 3600))
    world.advance(600 + world.service.config.leeway_seconds + 1)
    world.service.throttle.reset(f"client:{hashlib.sha256(b'agency-app').hexdigest()}")
    with pytest.raises(Unauthenticated):
        _client_credentials(world, stale)  # never used, but issued over 10 minutes ago


def test_refused_assertions_lock_the_client_out(world: World) -> None:
    key = MachineKey()
    register_machine(world, key)
    other = MachineKey()
    for _ in range(world.service.config.throttle.client_max_failures):
        with pytest.raises(Unauthenticated):
            _client_credentials(world, other.assertion("agency-app", now=world.service.now))
    with pytest.raises(ResourceExhausted) as info:
        _client_credentials(world, other.assertion("agency-app", now=world.service.now))
    assert info.value.reason == "CLIENT_LOCKED"


def test_keys_are_chosen_by_kid_and_an_rs256_key_works(world: World) -> None:
    es = ec.generate_private_key(ec.SECP256R1())
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    es_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(es.public_key()))
    es_jwk.update(kid="es", alg="ES256")
    rs_jwk = json.loads(RSAAlgorithm.to_jwk(rs.public_key()))
    rs_jwk.update(kid="rs")  # no alg: the key type decides
    world.service.register_client(m.Client(
        client_id="agency-app", client_name="two keys", redirect_uris=(),
        grant_types=(m.GRANT_CLIENT_CREDENTIALS,), scopes=("registry:issue",),
        auth_method="private_key_jwt", jwks_json=json.dumps({"keys": [es_jwk, rs_jwk]})))
    assert _client_credentials(world, _signed(rs, _claims(world), "RS256", {"kid": "rs"}))
    assert _client_credentials(world, _signed(es, _claims(world), "ES256", {"kid": "es"}))
    no_kid = jwt.encode(_claims(world), es, algorithm="ES256")
    assert _client_credentials(world, no_kid)  # any registered key may verify it
    for assertion in (_signed(es, _claims(world), "ES256", {"kid": "rs"}),  # wrong key type
                      _signed(rs, _claims(world), "RS256", {"kid": "es"})):  # JWK alg ES256
        with pytest.raises(Unauthenticated):
            _client_credentials(world, assertion)


def test_a_changed_client_jwks_replaces_the_old_keys(world: World,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = MachineKey(), MachineKey()
    register_machine(world, old)
    assert _client_credentials(world, old.assertion("agency-app", now=world.service.now))
    with world.service.engine.begin() as conn:  # the registration is replaced
        conn.execute(t.clients.update().where(t.clients.c.client_id == "agency-app")
                     .values(jwks_json=new.jwks_json))
    monkeypatch.setattr(service_module, "CLIENT_CACHE_SECONDS", 0.0)
    with pytest.raises(Unauthenticated):
        _client_credentials(world, old.assertion("agency-app", now=world.service.now))
    assert _client_credentials(world, new.assertion("agency-app", now=world.service.now))


def test_tokens_are_signed_as_pyjwt_signs_them(world: World) -> None:
    key = MachineKey()
    register_machine(world, key, agency="TH-JUR:0994000165510")
    token = _client_credentials(world, key.assertion("agency-app", now=world.service.now)
                                ).access_token
    kid, _ = world.service.keyring.signing_key("ES256")
    header, payload, _ = token.split(".")
    assert base64.urlsafe_b64decode(header + "==") == json.dumps(
        {"alg": "ES256", "kid": kid, "typ": "at+jwt"}, separators=(",", ":")).encode()
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    jwk = world.service.keyring.key(kid)
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"],
                      audience=claims["aud"]) == claims
    verified = TokenVerifier(StaticJwks(world.service.keyring.jwks()), issuer=ISSUER,
                             audiences=["urn:egov:registry"], clock=world.service.now
                             ).verify(token)
    assert verified.agency == "TH-JUR:0994000165510"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, _b64(hashlib.sha256(verifier.encode()).digest())


def _race(count: int, attempt: Callable[[], object]) -> tuple[list[object], list[EgovError]]:
    """``attempt`` from ``count`` threads released together."""
    start = threading.Barrier(count)

    def run(_: int) -> object:
        start.wait()
        try:
            return attempt()
        except EgovError as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        outcomes = list(pool.map(run, range(count)))
    return ([o for o in outcomes if not isinstance(o, EgovError)],
            [o for o in outcomes if isinstance(o, EgovError)])


def _first_tokens(world: World) -> tuple[str, str, str]:
    """(code, verifier, username) of a fresh authorization."""
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    login = s.login("portal", username, PASSWORD)
    verifier, challenge = _pkce()
    auth = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope="openid profile",
                       code_challenge=challenge, code_challenge_method="S256")
    return auth.code, verifier, username


def test_a_code_redeemed_concurrently_yields_tokens_once(world: World) -> None:
    code, verifier, _ = _first_tokens(world)
    won, lost = _race(6, lambda: world.service.token(m.TokenRequest(
        grant_type="authorization_code", client_id="portal", code=code,
        redirect_uri="https://portal.test/cb", code_verifier=verifier)))
    assert len(won) == 1
    assert {(type(e), e.reason) for e in lost} == {(InvalidArgument, "INVALID_GRANT")}
    # The replays revoked the refresh token the winner got.
    tokens = won[0]
    assert isinstance(tokens, m.TokenResponse)
    with pytest.raises(InvalidArgument):
        world.service.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                                           refresh_token=tokens.refresh_token))


def test_a_refresh_token_rotated_concurrently_rotates_once_and_revokes_the_family(
        world: World) -> None:
    code, verifier, _ = _first_tokens(world)
    s = world.service
    first = s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal",
                                   code=code, redirect_uri="https://portal.test/cb",
                                   code_verifier=verifier))
    won, lost = _race(6, lambda: s.token(m.TokenRequest(
        grant_type="refresh_token", client_id="portal", refresh_token=first.refresh_token)))
    assert len(won) == 1
    assert {e.reason for e in lost} == {"INVALID_GRANT"}
    successor = won[0]
    assert isinstance(successor, m.TokenResponse)
    with pytest.raises(InvalidArgument):  # reuse was detected: the family is gone
        s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                               refresh_token=successor.refresh_token))
    with s.engine.connect() as conn:
        rows = conn.execute(sa.select(t.refresh_tokens.c.revoked_at)).all()
    assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)


def test_a_wrong_pkce_verifier_burns_the_code_without_tokens(world: World) -> None:
    code, verifier, _ = _first_tokens(world)
    s = world.service
    with pytest.raises(InvalidArgument) as info:
        s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal", code=code,
                               redirect_uri="https://portal.test/cb", code_verifier="x" * 43))
    assert info.value.message == "PKCE verification failed"
    with pytest.raises(InvalidArgument) as info:
        s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal", code=code,
                               redirect_uri="https://portal.test/cb", code_verifier=verifier))
    assert info.value.message == "code was already used"
    with s.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.refresh_tokens)
                            ).scalar() == 0


def test_database_errors_name_the_statement_but_never_its_values(world: World) -> None:
    hot = world.service.hot
    row = {"issuer": "agency-app", "jti": "jti-with-a-secret-value", "expires_at": 1.0}
    hot.commit(lambda db: db.run(hot.sql.insert_jti, row))
    with pytest.raises(sa.exc.IntegrityError) as info:
        hot.commit(lambda db: db.run(hot.sql.insert_jti, row))
    assert "INSERT INTO used_jtis" in str(info.value)
    assert "jti-with-a-secret-value" not in str(info.value)
