"""egov_pki.tokens: the shared verifier fails closed on every forged or doubtful token."""

from __future__ import annotations

import base64
import copy
import json
import threading
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from egov_common.errors import Unauthenticated
from egov_pki.tokens import StaticJwks, TokenVerifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://id.example.test"
AUDIENCE = "urn:egov:keys"
NOW = 1_800_000_000.0

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    impl = ECAlgorithm if alg == "ES256" else RSAAlgorithm
    jwk: dict[str, Any] = json.loads(impl.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


JWKS = {"keys": [_jwk(EC_KEY, "ec-1", "ES256"), _jwk(RSA_KEY, "rsa-1", "RS256")]}


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "person-1", "aud": AUDIENCE, "iat": int(NOW) - 10,
        "exp": int(NOW) + 300, "scope": "openid keys:sign", "acr": "urn:egov:aal:2",
        "auth_time": int(NOW) - 20,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any] | None = None, *, kid: str = "ec-1", alg: str = "ES256",
          key: Any = None, headers: dict[str, Any] | None = None) -> str:
    key = key if key is not None else (EC_KEY if alg == "ES256" else RSA_KEY)
    return jwt.encode(claims if claims is not None else _claims(), key, algorithm=alg,
                      headers={"kid": kid, **(headers or {})})


def _verifier(**kwargs: Any) -> TokenVerifier:
    return TokenVerifier(StaticJwks(JWKS), issuer=ISSUER, audiences=[AUDIENCE],
                         clock=lambda: NOW, **kwargs)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _reason(token: str, verifier: TokenVerifier | None = None, **kwargs: Any) -> str:
    with pytest.raises(Unauthenticated) as info:
        (verifier or _verifier()).verify(token, **kwargs)
    return str(info.value.reason)


def test_genuine_es256_and_rs256_tokens_verify() -> None:
    token = _verifier().verify(_sign())
    assert token.subject == "person-1"
    assert token.aal == 2
    assert token.scopes == {"openid", "keys:sign"}
    assert _verifier().verify(_sign(kid="rsa-1", alg="RS256")).issuer == ISSUER


def test_alg_none_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none", "kid": "ec-1", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    assert _reason(f"{header}.{payload}.") == "TOKEN_ALGORITHM_NOT_ALLOWED"


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    pem = EC_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "kid": "ec-1"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    import hashlib
    import hmac
    sig = _b64(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert _reason(f"{header}.{payload}.{sig}") == "TOKEN_ALGORITHM_NOT_ALLOWED"


def test_rs256_header_against_the_ec_key_is_refused() -> None:
    assert _reason(_sign(kid="ec-1", alg="RS256")) == "TOKEN_ALGORITHM_NOT_ALLOWED"


def test_wrong_audience_and_issuer_are_refused() -> None:
    assert _reason(_sign(_claims(aud="urn:egov:registry"))) == "TOKEN_AUDIENCE_MISMATCH"
    assert _reason(_sign(_claims(iss="https://evil.test"))) == "TOKEN_ISSUER_MISMATCH"


def test_expired_token_is_refused_after_the_leeway() -> None:
    assert _reason(_sign(_claims(exp=int(NOW) - 31))) == "TOKEN_EXPIRED"
    assert _verifier().verify(_sign(_claims(exp=int(NOW) - 5))).subject == "person-1"


def test_unknown_kid_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    assert _reason(_sign(kid="attacker", key=other)) == "TOKEN_KEY_UNKNOWN"


def test_key_from_the_same_kid_but_another_private_key_fails_signature() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    assert _reason(_sign(key=other)) == "TOKEN_SIGNATURE_INVALID"


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk", "x5c"])
def test_keys_or_urls_in_the_header_are_refused(member: str) -> None:
    value: Any = {"kty": "EC"} if member == "jwk" else ["x"] if member == "x5c" else "https://evil"
    assert _reason(_sign(headers={member: value})) == "TOKEN_HEADER_REFUSED"


def test_unknown_crit_is_refused() -> None:
    assert _reason(_sign(headers={"crit": ["exp"], "exp": 1})) == "TOKEN_CRIT_UNSUPPORTED"


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
def test_required_claims_are_required(claim: str) -> None:
    assert _reason(_sign(_claims(**{claim: None}))) == "TOKEN_CLAIM_MISSING"


def test_string_dates_are_refused() -> None:
    assert _reason(_sign(_claims(exp=str(int(NOW) + 300)))) == "TOKEN_CLAIM_INVALID"
    assert _reason(_sign(_claims(exp=True))) == "TOKEN_CLAIM_INVALID"


def test_oversized_token_is_refused_before_parsing() -> None:
    assert _reason("a" * 9000) == "TOKEN_TOO_LARGE"


def test_stale_login_fails_a_freshness_requirement() -> None:
    stale = _sign(_claims(auth_time=int(NOW) - 100))
    assert _reason(stale, max_age_seconds=5) == "TOKEN_AUTHENTICATION_TOO_OLD"


def test_token_type_restriction() -> None:
    verifier = _verifier(token_types={"at+jwt"})
    assert _reason(_sign(), verifier) == "TOKEN_TYPE_MISMATCH"
    assert verifier.verify(_sign(headers={"typ": "at+jwt"})).token_type == "at+jwt"


def test_representation_claim_is_exposed() -> None:
    claims = _claims(act={"sub": "person-1"}, sub="company-1", representation={
        "juristic_person": "TH-JUR:0105536000315", "role": "director", "powers": ["sign"],
        "grant_id": "g1"})
    token = _verifier().verify(_sign(claims))
    assert token.representation is not None
    assert token.representation.actor == "person-1"
    assert "sign" in token.representation.powers


GENUINE = _sign()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(min_value=0, max_value=len(GENUINE) - 1), st.sampled_from(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."))
def test_any_changed_character_never_verifies(position: int, replacement: str) -> None:
    if GENUINE[position] == replacement:
        return
    tampered = GENUINE[:position] + replacement + GENUINE[position + 1 :]
    try:
        _verifier().verify(tampered)
    except Unauthenticated:
        return
    # base64url's last char may carry unused bits: the decoded bytes must then be identical
    header, payload, sig = tampered.split(".")
    g_header, g_payload, g_sig = GENUINE.split(".")
    def dec(s: str) -> bytes:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    assert (dec(header), dec(payload), dec(sig)) == (dec(g_header), dec(g_payload), dec(g_sig))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=8), st.integers(),
                                                        st.booleans(), st.none()), max_size=6))
def test_any_re_encoded_payload_with_the_old_signature_never_verifies(
    extra: dict[str, Any],
) -> None:
    header, _payload, sig = GENUINE.split(".")
    claims = {**_claims(), **extra}
    payload = _b64(json.dumps(claims).encode())
    if payload == GENUINE.split(".")[1]:
        return
    with pytest.raises(Unauthenticated):
        _verifier().verify(f"{header}.{payload}.{sig}")


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "jku", "cty", "x"]),
                       st.one_of(st.text(max_size=6), st.integers(), st.none()), max_size=4))
def test_any_rewritten_header_with_the_old_signature_never_verifies(extra: dict[str, Any]) -> None:
    _header, payload, sig = GENUINE.split(".")
    header = _b64(json.dumps({"alg": "ES256", "kid": "ec-1", "typ": "JWT", **extra}).encode())
    if header == GENUINE.split(".")[0]:
        return
    with pytest.raises(Unauthenticated):
        _verifier().verify(f"{header}.{payload}.{sig}")


def test_http_jwks_refreshes_on_unknown_kid_at_most_once_per_interval() -> None:
    import httpx
    from egov_pki.tokens import HttpJwks

    served = {"keys": [JWKS["keys"][0]]}
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json=served)

    clock = [0.0]
    client = httpx.Client(transport=httpx.MockTransport(handler))
    jwks = HttpJwks("https://id.test/jwks", client=client,
                    monotonic=lambda: clock[0], min_refresh_seconds=10)
    verifier = TokenVerifier(jwks, issuer=ISSUER, audiences=[AUDIENCE], clock=lambda: NOW)
    assert verifier.verify(_sign()).subject == "person-1"
    assert _reason(_sign(kid="rsa-1", alg="RS256"), verifier) == "TOKEN_KEY_UNKNOWN"
    assert _reason(_sign(kid="rsa-1", alg="RS256"), verifier) == "TOKEN_KEY_UNKNOWN"
    assert len(calls) == 1  # the rate limit held back the second refresh
    served["keys"] = JWKS["keys"]  # the issuer publishes the next key
    clock[0] = 11.0
    assert verifier.verify(_sign(kid="rsa-1", alg="RS256")).subject == "person-1"
    assert len(calls) == 2


def test_http_jwks_discovers_the_key_set_from_the_issuers_metadata() -> None:
    import httpx
    from egov_pki.tokens import HttpJwks

    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": "https://keys.test/set"})
        return httpx.Response(200, json=JWKS)

    jwks = HttpJwks.discover(ISSUER, client=httpx.Client(transport=httpx.MockTransport(handler)))
    verifier = TokenVerifier(jwks, issuer=ISSUER, audiences=[AUDIENCE], clock=lambda: NOW)
    assert verifier.verify(_sign()).subject == "person-1"
    assert asked == [ISSUER.rstrip("/") + "/.well-known/openid-configuration",
                     "https://keys.test/set"]


def test_http_jwks_refuses_metadata_that_names_another_issuer() -> None:
    import httpx
    from egov_common.errors import Unavailable
    from egov_pki.tokens import HttpJwks

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": "https://evil.test",
                                             "jwks_uri": "https://evil.test/jwks"})
        return httpx.Response(200, json=JWKS)

    jwks = HttpJwks.discover(ISSUER, client=httpx.Client(transport=httpx.MockTransport(handler)))
    verifier = TokenVerifier(jwks, issuer=ISSUER, audiences=[AUDIENCE], clock=lambda: NOW)
    with pytest.raises(Unavailable) as info:
        verifier.verify(_sign())
    assert info.value.reason == "JWKS_UNAVAILABLE"




def test_bearer_verifier_turns_tokens_into_callers() -> None:
    from egov_common.auth import CallerKind
    from egov_pki.tokens import BearerTokenVerifier

    bearer = BearerTokenVerifier(_verifier())
    machine = bearer(_sign(_claims(sub="agency-app", client_id="agency-app",
                                   agency="TH-JUR:0994000165510", scope="registry:issue")),
                     peer_service=None)
    assert machine.kind is CallerKind.CLIENT
    assert machine.agency == "TH-JUR:0994000165510"
    assert machine.has_scope("registry:issue")
    person = bearer(_sign(_claims(client_id="portal")), peer_service="signing")
    assert person.kind is CallerKind.PERSON
    assert person.is_service("signing")
    with pytest.raises(Unauthenticated):
        bearer(_sign(_claims(aud="elsewhere")), peer_service=None)


class _Keys:
    """A JWKS source whose keys the test changes, as identity's rotation would."""

    def __init__(self) -> None:
        self.by_kid: dict[str, dict[str, Any]] = {k["kid"]: k for k in JWKS["keys"]}

    def key(self, kid: str) -> dict[str, Any] | None:
        return self.by_kid.get(kid)


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each ES256 signature the verifier checks, by signing input (the header and payload)."""
    from egov_pki import tokens

    algorithm = tokens._ALGORITHM_IMPL["ES256"]
    checks: list[str] = []

    def counted(message: bytes, key: Any, signature: bytes) -> bool:
        checks.append(message.decode())
        return bool(ECAlgorithm.verify(algorithm, message, key, signature))

    monkeypatch.setattr(algorithm, "verify", counted)
    return checks


def test_a_token_presented_again_is_not_checked_again_but_its_claims_are(
    signature_checks: list[str],
) -> None:
    verifier = _verifier()
    token = _sign()
    first = verifier.verify(token)
    again = verifier.verify(token)

    assert again == first
    assert len(signature_checks) == 1
    with pytest.raises(TypeError):  # one object serves every call: nobody may change it
        again.claims["sub"] = "someone-else"


def test_nested_claims_are_read_only_too_yet_still_json_objects_and_arrays() -> None:
    nested = {
        "verified_claims": {"verification": {"trust_framework": "th_digital_id",
                                             "assurance_level": "2.3"},
                            "claims": {"given_name": "Somchai"}},
        "act": {"sub": "representative-1"},
        "representation": {"juristic_person": "TH-JUR:0994000165510", "role": "director",
                           "powers": ["sign"], "grant_id": "rep-1"},
        "amr": ["pwd", "otp"],
    }
    verifier = _verifier()
    token = _sign(_claims(**nested))
    verified = verifier.verify(token)
    verification = verified.claims["verified_claims"]["verification"]
    powers = verified.claims["representation"]["powers"]
    changes = [
        lambda: verification.__setitem__("assurance_level", "3"),
        lambda: verification.update(assurance_level="3"),
        lambda: verification.pop("assurance_level"),
        lambda: verified.claims["verified_claims"].clear(),
        lambda: verified.act.__setitem__("sub", "someone-else"),  # type: ignore[union-attr]
        lambda: powers.append("everything"),
        lambda: powers.__setitem__(0, "everything"),
        lambda: verified.claims["amr"].clear(),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="read-only"):
            change()

    again = verifier.verify(token)  # remembered: the same claims, unchanged
    assert again.claims["verified_claims"]["verification"]["assurance_level"] == "2.3"
    assert again.representation is not None and again.representation.powers == {"sign"}
    assert isinstance(again.claims["verified_claims"], dict)
    assert isinstance(powers, list)
    assert json.loads(json.dumps(dict(again.claims)))["representation"] == \
        nested["representation"]
    thawed = copy.deepcopy(dict(again.claims))
    thawed["verified_claims"]["verification"]["assurance_level"] = "3"  # a copy may change
    assert again.claims["verified_claims"]["verification"]["assurance_level"] == "2.3"


def test_a_remembered_token_still_expires_and_still_answers_to_max_age(
    signature_checks: list[str],
) -> None:
    clock = _Clock()
    verifier = TokenVerifier(StaticJwks(JWKS), issuer=ISSUER, audiences=[AUDIENCE], clock=clock)
    token = _sign(_claims(exp=int(NOW) + 60, auth_time=int(NOW) - 100))
    assert verifier.verify(token).subject == "person-1"

    assert _reason(token, verifier, max_age_seconds=5) == "TOKEN_AUTHENTICATION_TOO_OLD"
    clock.now = NOW + 60 + 31  # past exp and the 30 s leeway
    assert _reason(token, verifier) == "TOKEN_EXPIRED"
    assert len(signature_checks) == 1  # the dates were checked again, the signature was not


def test_a_remembered_token_fails_once_its_key_is_withdrawn_or_replaced() -> None:
    keys = _Keys()
    verifier = TokenVerifier(keys, issuer=ISSUER, audiences=[AUDIENCE], clock=lambda: NOW)
    token = _sign()
    verifier.verify(token)

    withdrawn = keys.by_kid.pop("ec-1")
    assert _reason(token, verifier) == "TOKEN_KEY_UNKNOWN"
    keys.by_kid["ec-1"] = withdrawn
    verifier.verify(token)
    keys.by_kid["ec-1"] = _jwk(ec.generate_private_key(ec.SECP256R1()), "ec-1", "ES256")
    assert _reason(token, verifier) == "TOKEN_SIGNATURE_INVALID"


def test_a_refused_token_is_checked_in_full_every_time(signature_checks: list[str]) -> None:
    verifier = _verifier()
    forged = _sign(key=ec.generate_private_key(ec.SECP256R1()))
    assert _reason(forged, verifier) == "TOKEN_SIGNATURE_INVALID"
    assert _reason(forged, verifier) == "TOKEN_SIGNATURE_INVALID"
    assert len(signature_checks) == 2


def test_the_verifier_remembers_a_bounded_number_of_tokens_and_forgets_expired_ones_first(
    signature_checks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from egov_pki import tokens

    monkeypatch.setattr(tokens, "VERIFIED_TOKENS_REMEMBERED", 4)
    clock = _Clock()
    verifier = TokenVerifier(StaticJwks(JWKS), issuer=ISSUER, audiences=[AUDIENCE], clock=clock)
    lasting = _sign(_claims(exp=int(NOW) + 3600))
    brief = [_sign(_claims(exp=int(NOW) + 60, jti=str(n))) for n in range(3)]
    for token in [lasting, *brief]:
        verifier.verify(token)
    clock.now = NOW + 120  # the brief ones expired (and the leeway passed)

    verifier.verify(_sign(_claims(exp=int(NOW) + 3600, jti="new")))  # makes room for itself
    checks = len(signature_checks)
    verifier.verify(lasting)
    assert len(signature_checks) == checks  # still remembered

    for n in range(4):  # over the bound with live tokens only: it starts afresh
        verifier.verify(_sign(_claims(exp=int(NOW) + 3600, jti=f"more-{n}")))
    checks = len(signature_checks)
    verifier.verify(lasting)
    assert len(signature_checks) == checks + 1


def test_a_date_too_large_for_a_float_is_an_invalid_claim_not_a_crash() -> None:
    # JSON integers have no bound; float() of 10**400 raises OverflowError (an INTERNAL status)
    assert _reason(_sign(_claims(exp=10**400))) == "TOKEN_CLAIM_INVALID"
    assert _reason(_sign(_claims(nbf=-(10**400)))) == "TOKEN_CLAIM_INVALID"


def test_a_key_whose_key_ops_exclude_verify_is_not_used_for_signatures() -> None:
    # RFC 7517 section 4.3: a key published for other operations does not verify tokens
    encrypting = {**_jwk(EC_KEY, "ec-1", "ES256"), "key_ops": ["encrypt", "wrapKey"]}
    verifier = TokenVerifier(StaticJwks({"keys": [encrypting]}), issuer=ISSUER,
                             audiences=[AUDIENCE], clock=lambda: NOW)
    assert _reason(_sign(), verifier) == "TOKEN_KEY_UNKNOWN"
    verifying = {**_jwk(EC_KEY, "ec-1", "ES256"), "key_ops": ["verify"]}
    verifier = TokenVerifier(StaticJwks({"keys": [verifying]}), issuer=ISSUER,
                             audiences=[AUDIENCE], clock=lambda: NOW)
    assert verifier.verify(_sign()).subject == "person-1"


class _JwksServer:
    """Identity's JWKS endpoint as httpx sees it: answers ``body`` (or a status), counts fetches.

    ``monotonic`` is the clock HttpJwks reads; a streamed body may advance it chunk by chunk.
    """

    def __init__(self, body: Any = None, status: int = 200) -> None:
        self.body = JWKS if body is None else body
        self.status = status
        self.fetches = 0
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def __call__(self, request: Any) -> Any:
        import httpx

        self.fetches += 1
        if self.status != 200:
            return httpx.Response(self.status)
        if isinstance(self.body, bytes):
            return httpx.Response(200, content=self.body)
        if callable(self.body):
            return httpx.Response(200, content=self.body())
        return httpx.Response(200, json=self.body)

    def verifier(self, **kwargs: Any) -> TokenVerifier:
        import httpx
        from egov_pki.tokens import HttpJwks

        jwks = HttpJwks("https://id.test/jwks", monotonic=self.monotonic,
                        client=httpx.Client(transport=httpx.MockTransport(self)), **kwargs)
        return TokenVerifier(jwks, issuer=ISSUER, audiences=[AUDIENCE], clock=lambda: NOW)


def _unavailable(verifier: TokenVerifier, token: str) -> str:
    from egov_common.errors import Unavailable

    with pytest.raises(Unavailable) as info:
        verifier.verify(token)
    return str(info.value.reason)


@pytest.mark.parametrize(
    "body",
    [b"[]", b"null", b'"keys"', b"42", b"[" * 100_000, b"\xff\xfe", b"{"],
    ids=["array", "null", "string", "number", "deeply-nested", "not-utf8", "truncated"],
)
def test_a_garbage_jwks_is_unavailable_not_an_internal_error(body: bytes) -> None:
    assert _unavailable(_JwksServer(body).verifier(), _sign()) == "JWKS_UNAVAILABLE"


def test_a_garbage_jwks_refresh_keeps_the_keys_already_fetched() -> None:
    server = _JwksServer()
    verifier = server.verifier(cache_seconds=300)
    assert verifier.verify(_sign()).subject == "person-1"
    server.body = b"[]"
    server.now = 301.0  # the cache is stale: the next call refreshes, and gets garbage
    assert verifier.verify(_sign(_claims(jti="after"))).subject == "person-1"
    assert server.fetches == 2


def test_an_unreachable_jwks_is_not_fetched_again_on_every_request() -> None:
    # Each fetch holds every verification up to the timeout: one per interval, not per request.
    server = _JwksServer()
    verifier = server.verifier(cache_seconds=300, min_refresh_seconds=10)
    verifier.verify(_sign())
    server.status = 503
    server.now = 301.0
    for n in range(5):
        assert verifier.verify(_sign(_claims(jti=str(n)))).subject == "person-1"  # cached keys
    assert server.fetches == 2
    server.now = 312.0
    verifier.verify(_sign(_claims(jti="later")))
    assert server.fetches == 3


def test_cached_keys_stop_being_trusted_once_identity_has_been_unreachable_too_long() -> None:
    # identity may have withdrawn a compromised key meanwhile; a service that cannot learn so
    # must not go on trusting it for ever. It answers UNAVAILABLE until a refresh succeeds.
    server = _JwksServer()
    verifier = server.verifier(cache_seconds=300, min_refresh_seconds=10, max_stale_seconds=3600)
    token = _sign()
    verifier.verify(token)
    server.status = 503
    server.now = 3599.0
    assert verifier.verify(token).subject == "person-1"  # remembered, its key still cached
    assert verifier.verify(_sign(_claims(jti="new"))).subject == "person-1"
    server.now = 3601.0
    assert _unavailable(verifier, token) == "JWKS_STALE"
    assert _unavailable(verifier, _sign(_claims(jti="newer"))) == "JWKS_STALE"
    server.status = 200
    server.now = 3612.0
    assert verifier.verify(token).subject == "person-1"


def test_a_new_kid_while_identity_is_unreachable_is_unavailable_not_an_unknown_key() -> None:
    # identity replaced its signing key (rotate-signing-key signs with the new one at once) and
    # this service cannot reach it to learn the new key: the token may well be good, so the
    # answer is "try again" (UNAVAILABLE), not "your token is bad" (a portal logs out).
    server = _JwksServer({"keys": [JWKS["keys"][0]]})
    verifier = server.verifier(cache_seconds=300, min_refresh_seconds=10)
    assert verifier.verify(_sign()).subject == "person-1"
    server.status = 503
    server.now = 20.0
    rotated = _sign(kid="rsa-1", alg="RS256")
    assert _unavailable(verifier, rotated) == "JWKS_UNAVAILABLE"
    assert _unavailable(verifier, rotated) == "JWKS_UNAVAILABLE"  # throttled: no new fetch
    assert server.fetches == 2
    assert verifier.verify(_sign(_claims(jti="old key"))).subject == "person-1"
    server.status, server.body = 200, JWKS
    server.now = 31.0
    assert verifier.verify(rotated).subject == "person-1"
    # Once identity answered, a kid its set does not hold is unknown again.
    assert _reason(_sign(kid="attacker", key=ec.generate_private_key(ec.SECP256R1())),
                   verifier) == "TOKEN_KEY_UNKNOWN"


def test_a_jwks_never_fetched_is_not_fetched_again_on_every_request() -> None:
    server = _JwksServer(status=503)
    verifier = server.verifier(min_refresh_seconds=10)
    for n in range(5):
        assert _unavailable(verifier, _sign(_claims(jti=str(n)))) == "JWKS_UNAVAILABLE"
    assert server.fetches == 1
    server.status = 200
    server.now = 11.0
    assert verifier.verify(_sign()).subject == "person-1"
    assert server.fetches == 2


def test_a_huge_jwks_is_refused_without_reading_it_all() -> None:
    read: list[int] = []

    def endless() -> Any:
        yield b'{"keys": ' + json.dumps(JWKS["keys"]).encode()[:-1] + b", "
        while len(read) < 100_000:  # a few MB of padding the verifier must not hold
            read.append(1)
            yield b'{"kid": "pad", "kty": "oct"}, ' * 32
        yield b"{}]}"

    server = _JwksServer(endless)
    assert _unavailable(server.verifier(), _sign()) == "JWKS_UNAVAILABLE"
    assert len(read) < 1000


def test_a_jwks_that_trickles_in_gives_up_at_the_timeout() -> None:
    # httpx's timeouts bound each read, not the response: a byte every few seconds would hold
    # the JWKS lock, and every verification in the process, for as long as the server likes.
    server = _JwksServer()
    sent: list[int] = []

    def trickle() -> Any:
        for byte in json.dumps(JWKS).encode():
            server.now += 1.0  # a second per byte, each well inside a read timeout
            sent.append(byte)
            yield bytes([byte])

    server.body = trickle
    assert _unavailable(server.verifier(timeout_seconds=5), _sign()) == "JWKS_UNAVAILABLE"
    assert len(sent) <= 6


class _HangingJwksServer:
    """Identity's JWKS endpoint that answers the first fetch and hangs on the next ones until
    released (bounded: a hang never outlasts the test)."""

    def __init__(self) -> None:
        self.body: Any = JWKS
        self.fetches = 0
        self.now = 0.0
        self.hanging = threading.Event()  # a fetch is in progress, waiting for ``release``
        self.release = threading.Event()
        self.answered = threading.Event()  # the hanging fetch got its answer

    def __call__(self, request: Any) -> Any:
        import httpx

        self.fetches += 1
        if self.fetches > 1:
            self.hanging.set()
            self.release.wait(10)
            self.answered.set()
        return httpx.Response(200, json=self.body)

    def jwks(self) -> Any:
        import httpx
        from egov_pki.tokens import HttpJwks

        return HttpJwks("https://id.test/jwks", monotonic=lambda: self.now, cache_seconds=300,
                        min_refresh_seconds=10, timeout_seconds=30,
                        client=httpx.Client(transport=httpx.MockTransport(self)))


def _in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


def test_a_hanging_refresh_does_not_hold_up_checks_whose_key_is_cached() -> None:
    # identity stops answering: one thread waits for the refresh, the others go on with the
    # keys they have (still within max_stale_seconds)
    server = _HangingJwksServer()
    jwks = server.jwks()
    key = jwks.key("ec-1")
    assert key is not None
    server.now = 301.0  # the cache is due for a refresh
    refreshing, _ = _in_thread(lambda: jwks.key("ec-1"))
    assert server.hanging.wait(10)
    try:
        assert jwks.key("ec-1") == key
        assert jwks.key("rsa-1") is not None
        assert not server.answered.is_set()  # answered while the refresh still hangs
    finally:
        server.release.set()
    refreshing.join(10)
    assert server.fetches == 2  # one refresh, not one per check


def test_a_check_that_needs_the_refresh_waits_for_the_one_in_flight() -> None:
    # a kid the cache does not hold: the answer depends on the refresh under way, so the
    # check waits for it (fail closed) instead of refusing the token or fetching again
    server = _HangingJwksServer()
    server.body = {"keys": [JWKS["keys"][0]]}
    jwks = server.jwks()
    assert jwks.key("ec-1") is not None
    server.body = JWKS  # identity publishes rsa-1
    server.now = 301.0
    refreshing, _ = _in_thread(lambda: jwks.key("ec-1"))
    assert server.hanging.wait(10)
    waiting, found = _in_thread(lambda: jwks.key("rsa-1"))
    server.release.set()
    waiting.join(10)
    refreshing.join(10)
    assert found == [JWKS["keys"][1]]
    assert server.fetches == 2
