"""OIDC HTTP endpoints beside gRPC, so unmodified OpenID Connect clients work.

``/.well-known/openid-configuration`` (OIDC Discovery 1.0), ``/jwks`` (RFC 7517), ``/authorize``
(the authorization request by GET or POST, checked alike before the login form is shown and when
it comes back with the login; a minimal login form: password + TOTP), ``/token`` (RFC 6749, PKCE
RFC 7636, RFC 7523 client assertions, RFC 8693 token exchange, CIBA poll), ``/userinfo``,
``/revoke`` (RFC 7009), ``/introspect`` (RFC 7662). Every handler translates and delegates to
:class:`~egov_identity.domain.service.IdentityService`.

Errors say what they are, and nothing more:

- A request the client or person got wrong is answered with the error code of the RFC that
  governs the endpoint (RFC 6749 section 5.2 at the token endpoint, RFC 6750 section 3.1 with a
  ``WWW-Authenticate`` challenge at ``/userinfo``, CIBA section 13 at ``/bc-authorize``) and the
  platform's ``reason`` beside it.
- At the login form every wrong credential (unknown name, wrong password, wrong code) gets one
  text and one status, so nothing tells which accounts exist; a lock-out says it is one.
- A fault of the service (``INTERNAL``/``UNKNOWN``/``DATA_LOSS`` errors such as ``KEK_UNKNOWN``,
  or any unexpected exception) is ``500 server_error``; a temporary one (``UNAVAILABLE``,
  ``DEADLINE_EXCEEDED``, ``ABORTED``, the database out of reach) is ``503
  temporarily_unavailable`` with ``Retry-After``. The response carries a short reference and no
  reason code, message or traceback; the log line has the reason and the same reference.
"""

from __future__ import annotations

import html
import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from egov_common.errors import (
    Code,
    EgovError,
    InvalidArgument,
    NotFound,
)
from egov_pki.tokens import acr_for_aal
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message

from egov_identity.domain import model as m
from egov_identity.domain.keyring import ID_TOKEN_ALGORITHMS, JWKS_MAX_AGE_SECONDS
from egov_identity.domain.levels import AAL_LEVELS
from egov_identity.domain.service import TRUST_FRAMEWORK, IdentityService

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_OAUTH_ERRORS = {
    "INVALID_GRANT", "INVALID_CLIENT", "UNSUPPORTED_GRANT_TYPE", "INVALID_SCOPE",
    "AUTHORIZATION_PENDING", "SLOW_DOWN", "EXPIRED_TOKEN", "ACCESS_DENIED",
    "UNAUTHORIZED_CLIENT", "INVALID_REQUEST", "INVALID_TARGET",
}
#: Reasons whose OAuth error is not their lower-cased name (RFC 6749 5.2, RFC 8693 2.2.2).
_REASON_ERRORS = {
    "POWER_MISSING": "invalid_scope",
    "NOT_REPRESENTATIVE": "invalid_grant",
    "TOKEN_SUBJECT_UNKNOWN": "invalid_grant",
    "TOKEN_CLIENT_MISMATCH": "invalid_grant",  # RFC 7009 2.1: another client's token
}
#: Polling states of a CIBA client: expected every few seconds, not worth an INFO line.
_QUIET_REASONS = {"AUTHORIZATION_PENDING", "SLOW_DOWN"}
_MAX_FORM_BYTES = 64 * 1024
_TOO_LARGE = "request too large"

#: Codes that mean the service failed (500) or is failing for a while (503), not the request.
_FAULT_CODES = {Code.INTERNAL, Code.UNKNOWN, Code.DATA_LOSS, Code.UNIMPLEMENTED, Code.CANCELLED,
                Code.OK}
_UNAVAILABLE_CODES = {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.ABORTED}
#: Seconds a client is asked to wait when the failure does not say (a database fail-over).
RETRY_AFTER_SECONDS = 30


@dataclass(frozen=True, slots=True)
class _Fault:
    """How to answer a failure of the service (not of the request)."""

    status: int  # 500 or 503
    error: str  # server_error or temporarily_unavailable
    retry_after: str  # seconds, "" for 500
    reference: str  # in the response and in the log line

    @property
    def description(self) -> str:
        if self.status == 503:
            return (f"the identity service is temporarily unavailable; try again in "
                    f"{self.retry_after} seconds (reference {self.reference})")
        return f"the identity service failed; try again later (reference {self.reference})"

    @property
    def headers(self) -> dict[str, str]:
        return {**_NO_STORE, **({"Retry-After": self.retry_after} if self.retry_after else {})}


def _database_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free
        return True
    return isinstance(exc, sa.exc.DBAPIError) and (
        exc.connection_invalidated
        or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError))


def _fault(exc: BaseException, endpoint: str) -> _Fault | None:
    """``None`` when ``exc`` is the request's fault (an ``EgovError`` with a client code), else
    :func:`_service_fault`."""
    if isinstance(exc, EgovError) and exc.code not in _FAULT_CODES | _UNAVAILABLE_CODES:
        return None
    return _service_fault(exc, endpoint)


def _service_fault(exc: BaseException, endpoint: str) -> _Fault:
    """Logs one line naming the endpoint, the reason and a fresh reference, and says how to
    answer. SQLAlchemy errors are logged by type only: their text holds the statement's
    parameters, which may be personal data."""
    reference = secrets.token_hex(6)
    extra: dict[str, str] = {"endpoint": endpoint, "reference": reference}
    if isinstance(exc, EgovError):
        unavailable = exc.code in _UNAVAILABLE_CODES
        retry = exc.metadata.get("retry_after", "") or str(RETRY_AFTER_SECONDS)
        log.error("%s failed: %s", endpoint, exc.reason, extra={
            **extra, "reason": exc.reason, "code": exc.code.value, "detail": exc.message})
    elif isinstance(exc, sa.exc.SQLAlchemyError):
        unavailable = _database_unreachable(exc)
        reason = "DATABASE_UNAVAILABLE" if unavailable else "DATABASE_ERROR"
        retry = str(RETRY_AFTER_SECONDS)
        orig = getattr(exc, "orig", None)
        log.error("%s failed: %s", endpoint, reason, extra={
            **extra, "reason": reason, "error": type(exc).__name__,
            "driver_error": type(orig).__name__ if orig is not None else ""})
    else:
        unavailable, retry = False, ""
        log.error("%s failed: INTERNAL", endpoint, exc_info=exc,
                  extra={**extra, "reason": "INTERNAL", "error": type(exc).__name__})
    if unavailable:
        return _Fault(503, "temporarily_unavailable", retry, reference)
    return _Fault(500, "server_error", "", reference)


def _fault_json(fault: _Fault) -> JSONResponse:
    return JSONResponse({"error": fault.error, "error_description": fault.description},
                        status_code=fault.status, headers=fault.headers)


def _oauth_error(exc: BaseException, endpoint: str,
                 overrides: Mapping[str, tuple[str, int]] | None = None) -> JSONResponse:
    """The JSON error of a token-style endpoint (RFC 6749 section 5.2). ``overrides`` maps a
    reason to the (error, status) an endpoint's own specification gives it."""
    fault = _fault(exc, endpoint)
    if fault is not None:
        return _fault_json(fault)
    assert isinstance(exc, EgovError)
    reason = exc.reason
    headers = dict(_NO_STORE)
    if overrides and reason in overrides:
        error, status = overrides[reason]
    elif reason == "CLIENT_LOCKED":  # failed client authentications: locked for a while
        error, status = "invalid_client", 429
    elif reason in _OAUTH_ERRORS:
        error = reason.lower()
        status = 401 if error == "invalid_client" else 400
    elif reason in _REASON_ERRORS:
        error, status = _REASON_ERRORS[reason], 400
    elif exc.code is Code.UNAUTHENTICATED:
        error = "invalid_client" if reason.startswith("CLIENT") else "invalid_grant"
        status = 401 if error == "invalid_client" else 400
    elif exc.code is Code.PERMISSION_DENIED:
        error, status = "access_denied", 400
    elif exc.code is Code.RESOURCE_EXHAUSTED:
        error, status = "temporarily_unavailable", 429
    else:
        error, status = "invalid_request", 400
    if status == 429:
        headers["Retry-After"] = exc.metadata.get("retry_after", "") or str(RETRY_AFTER_SECONDS)
    level = logging.DEBUG if reason in _QUIET_REASONS else logging.INFO
    log.log(level, "%s refused: %s", endpoint, reason,
            extra={"endpoint": endpoint, "reason": reason, "error": error})
    return JSONResponse({"error": error, "error_description": exc.message, "reason": reason},
                        status_code=status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    """The text fields of the form in the body. ``InvalidArgument(INVALID_REQUEST)`` when the
    body is larger than ``_MAX_FORM_BYTES`` (counted as it arrives: a chunked body has no
    Content-Length) or is no form the parser reads (too many fields, a multipart body without
    its boundary): the client's mistake, not the service's."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise InvalidArgument("INVALID_REQUEST", _TOO_LARGE)

    async def received() -> Message:
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        form = await Request(request.scope, received).form()
    except (HTTPException, MultiPartException):
        raise InvalidArgument("INVALID_REQUEST", "the body is not a valid form") from None
    return _text_fields({k: v for k, v in form.items() if isinstance(v, str)})


def _text_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """``fields`` unless one holds a NUL character, which no PostgreSQL text column stores:
    ``InvalidArgument(INVALID_REQUEST)`` then (a fault of the service otherwise)."""
    for name, value in fields.items():
        if "\x00" in name or "\x00" in value:
            raise InvalidArgument("INVALID_REQUEST", "a field holds a NUL character")
    return dict(fields)


def _challenge_value(text: str) -> str:
    """Text allowed inside a quoted ``WWW-Authenticate`` parameter (RFC 6750 section 3)."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


def _minutes(seconds: str) -> str:
    try:
        minutes = max(1, round(int(seconds) / 60))
    except ValueError:
        minutes = 5
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


_LOGIN_PAGE = """<!doctype html>
<html lang="th"><head><meta charset="utf-8"><title>Digital ID login</title></head>
<body><h1>เข้าสู่ระบบ Digital ID / Digital ID login</h1>
<p>{client}</p>
<p>{receives}</p>{error}
<form method="post" action="authorize">
{hidden}
<label>Login name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
{code}
<button type="submit">Log in</button>
</form></body></html>"""
_CODE_FIELD = ('<label>Authenticator code <input name="totp_code" inputmode="numeric" '
               'autocomplete="one-time-code"></label>')
_CODE_FIELD_REQUIRED = ('<label>Authenticator code (this service needs it) <input '
                        'name="totp_code" inputmode="numeric" autocomplete="one-time-code" '
                        'required></label>')
#: What the person is told the client receives with each scope: logging in at the form that
#: says so is the consent (OIDC Core 3.1.2.1, prompt=consent).
_SCOPE_TEXTS = {
    "openid": "that you logged in, under an identifier for you at this service",
    "profile": "your name and date of birth",
    "identifier": "your national identification number",
    "verified_claims": "how your identity was verified",
    "offline_access": "access while you are not using the service",
}

_MESSAGE_PAGE = """<!doctype html>
<html lang="th"><head><meta charset="utf-8"><title>Digital ID</title></head>
<body><h1>Digital ID</h1><p role="alert">{message}</p></body></html>"""

#: What a client may sign its ``private_key_jwt`` assertions with (client_assertions.py).
_CLIENT_ASSERTION_ALGS = ("ES256", "RS256")
#: Request objects, which this provider does not support: OIDC Core 6.1 and 6.2 errors.
_REQUEST_OBJECT_ERRORS = {"request": "request_not_supported",
                          "request_uri": "request_uri_not_supported"}

#: The authorization request's parameters the login form carries back (as hidden fields).
_AUTHORIZE_PARAMS = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                     "code_challenge_method", "acr_values", "claims", "response_type")
#: Fields of the login form that no authorization request has: a POST with either is the login
#: form, one with neither is an authorization request sent by POST (OIDC Core 3.1.2.1).
_LOGIN_FIELDS = ("username", "password")
#: Errors of the domain's refusals (RFC 6749 section 4.1.2.1, OIDC Core 3.1.2.6); any other
#: reason is invalid_request.
_AUTHORIZE_ERRORS = {"SCOPE_INVALID": "invalid_scope", "ACR_NOT_MET": "access_denied",
                     "UNAUTHORIZED_CLIENT": "unauthorized_client",
                     "LOGIN_REQUIRED": "login_required"}
#: Headers of every page of the login. No page may be framed (clickjacking): X-Frame-Options
#: (RFC 7034) and CSP frame-ancestors. default-src 'none': the pages load nothing; base-uri
#: 'none': no <base> may move the form's relative action. No form-action: Chromium applies it
#: to the redirects that follow the form's submission too (the 302 to the client's redirect URI
#: and whatever the client answers with, to any origin), so form-action 'self' stopped every
#: login before it reached the client, and no list of origins would hold.
_PAGE_HEADERS = {**_NO_STORE, "X-Frame-Options": "DENY",
                 "Content-Security-Policy": "default-src 'none'; base-uri 'none'; "
                                            "frame-ancestors 'none'"}

#: What the person reads at the login form (no reason codes, no internals).
WRONG_CREDENTIALS = "Login name, password or code is wrong."
ACCOUNT_LOCKED = ("This account is temporarily locked after too many failed attempts. "
                  "Try again in {wait}.")
CLIENT_LOCKED = ("Too many failed logins through this service. Logging in here is "
                 "temporarily locked; try again in {wait}.")
CODE_REQUIRED = ("This service needs the code from your authenticator app as well as your "
                 "password.")
SERVICE_FAILED = ("The login service failed. This is not a problem with what you typed; try "
                  "again later. If it keeps happening, contact the help desk with reference "
                  "{reference}.")
SERVICE_UNAVAILABLE = ("The login service is temporarily unavailable. Try again in "
                       "{seconds} seconds (reference {reference}).")
UNKNOWN_CLIENT = "Unknown client or redirect URI."


def _fault_message(fault: _Fault) -> str:
    if fault.status == 503:
        return SERVICE_UNAVAILABLE.format(seconds=fault.retry_after, reference=fault.reference)
    return SERVICE_FAILED.format(reference=fault.reference)


@dataclass(frozen=True, slots=True)
class _Refusal:
    """An authorization request the endpoint refuses: the error for the client (RFC 6749
    section 4.1.2.1, OIDC Core 3.1.2.6), the reason for the log, and what is wrong."""

    error: str
    reason: str
    description: str


def _request_refusal(params: Mapping[str, str]) -> _Refusal | None:
    """What the authorization endpoint itself refuses in a request, before the domain checks
    the rest (:meth:`IdentityService.authorization_request`); ``None`` when it refuses
    nothing."""
    response_type = params.get("response_type", "")
    if not response_type:
        return _Refusal("invalid_request", "RESPONSE_TYPE_MISSING", "response_type is required")
    if response_type != "code":
        return _Refusal("unsupported_response_type", "RESPONSE_TYPE_UNSUPPORTED",
                        "only code is supported")
    for parameter, error in _REQUEST_OBJECT_ERRORS.items():
        if parameter in params:  # ignored, it would not be the request the client signed
            return _Refusal(error, error.upper(), f"the {parameter} parameter is not supported")
    # Discovery says response_modes_supported ["query"]: a client that asked for the answer
    # posted or in the fragment would not look for it in the query.
    if (params.get("response_mode") or "query") != "query":
        return _Refusal("invalid_request", "RESPONSE_MODE_UNSUPPORTED",
                        "response_mode is not supported: only query is")
    prompt = params.get("prompt", "").split()
    if "none" in prompt and len(set(prompt)) > 1:  # OIDC Core 3.1.2.1
        return _Refusal("invalid_request", "PROMPT_INVALID",
                        "prompt=none cannot be combined with other values")
    return None


def _receives(request: m.AuthorizationRequest) -> str:
    """What the client will receive, in words, for the login form (the consent of
    ``prompt=consent``)."""
    items = []
    for scope in request.scopes:
        service, _, permission = scope.partition(":")
        if scope in _SCOPE_TEXTS:
            items.append(_SCOPE_TEXTS[scope])
        elif permission:
            items.append(f"permission to {permission} with the {service} service in your name")
    if request.wants_verified_claims and "verified_claims" not in request.scopes:
        items.append(_SCOPE_TEXTS["verified_claims"])
    return f"{request.client.client_name} will receive: {'; '.join(items)}."


def _message_page(message: str, status: int, headers: Mapping[str, str] | None = None
                  ) -> HTMLResponse:
    return HTMLResponse(_MESSAGE_PAGE.format(message=html.escape(message)), status_code=status,
                        headers={**_PAGE_HEADERS, **(headers or {})})


def build_http_app(service: IdentityService) -> Starlette:
    """The ASGI app to pass to ``egov_common.server.serve(..., http_app=...)``."""
    issuer = service.config.issuer

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args, **kwargs)

    async def discovery(_: Request) -> Response:
        return JSONResponse({
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "revocation_endpoint": f"{issuer}/revoke",
            "introspection_endpoint": f"{issuer}/introspect",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": sorted(m.GRANT_TYPES),
            "subject_types_supported": ["public", "pairwise"],
            # Exactly what a client may register as id_token_signed_response_alg.
            "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGORITHMS),
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(_CLIENT_ASSERTION_ALGS),
            # Left out, both would default to client_secret_basic (RFC 8414 section 2).
            "revocation_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "revocation_endpoint_auth_signing_alg_values_supported": list(
                _CLIENT_ASSERTION_ALGS),
            "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
            "introspection_endpoint_auth_signing_alg_values_supported": list(
                _CLIENT_ASSERTION_ALGS),
            # No request objects; request_uri would default to supported (Discovery 1.0 3).
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": sorted(m.PERSON_SCOPES),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr",
                                 "amr", "at_hash", "name", "given_name", "family_name",
                                 "birthdate", "identifier", "verified_claims"],
            "acr_values_supported": [acr_for_aal(aal) for aal in AAL_LEVELS],
            "claims_parameter_supported": True,
            "authorization_response_iss_parameter_supported": True,
            "backchannel_token_delivery_modes_supported": ["poll"],
            "backchannel_authentication_endpoint": f"{issuer}/bc-authorize",
            "backchannel_user_code_parameter_supported": False,
            "verified_claims_supported": True,
            "trust_frameworks_supported": [TRUST_FRAMEWORK],
            "evidence_supported": ["document", "electronic_record"],
            "claims_in_verified_claims_supported": ["given_name", "family_name", "birthdate"],
        }, headers={"Cache-Control": "public, max-age=300"})

    async def jwks(_: Request) -> Response:
        try:
            keys = await call(service.keyring.jwks)
        except Exception as exc:
            return _fault_json(_service_fault(exc, "/jwks"))
        return JSONResponse(keys, headers={
            "Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"})

    def login_page(params: Mapping[str, str], request: m.AuthorizationRequest, error: str = "",
                   status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
        """The login form for ``request``: it says what the client will receive and asks for
        the authenticator code when the request needs AAL2, however it said so."""
        hidden = "\n".join(
            f'<input type="hidden" name="{k}" value="{html.escape(params.get(k, ""))}">'
            for k in _AUTHORIZE_PARAMS)
        page = _LOGIN_PAGE.format(
            client=html.escape(request.client.client_name),
            receives=html.escape(_receives(request)), hidden=hidden,
            code=_CODE_FIELD_REQUIRED if request.required_aal >= 2 else _CODE_FIELD,
            error=f'<p role="alert">{html.escape(error)}</p>' if error else "")
        return HTMLResponse(page, status_code=status, headers={**_PAGE_HEADERS,
                                                               **(headers or {})})

    def _check_client(params: Mapping[str, str]) -> m.Client:
        client = service.get_client(params.get("client_id", ""))
        if params.get("redirect_uri", "") not in client.redirect_uris:
            raise InvalidArgument("REDIRECT_URI_MISMATCH", "redirect URI is not registered")
        return client

    async def checked_client(params: Mapping[str, str]) -> m.Client | Response:
        """The client, or the page to show: never redirect to an unverified URI (RFC 6749
        section 4.1.2.1), so these failures stay with the person."""
        try:
            client: m.Client = await call(_check_client, params)
        except (NotFound, InvalidArgument):
            return _message_page(UNKNOWN_CLIENT, 400)
        except Exception as exc:
            fault = _fault(exc, "/authorize")
            if fault is None:
                return _message_page(UNKNOWN_CLIENT, 400)
            return _message_page(_fault_message(fault), fault.status, fault.headers)
        return client

    def _redirect_error(params: Mapping[str, str], error: str, description: str) -> Response:
        query = {"error": error, "error_description": description, "iss": issuer}
        if params.get("state"):
            query["state"] = params["state"]
        uri = params["redirect_uri"]
        sep = "&" if urllib.parse.urlsplit(uri).query else "?"
        return RedirectResponse(uri + sep + urllib.parse.urlencode(query), status_code=302,
                                headers=_NO_STORE)

    def refuse(params: Mapping[str, str], error: str, description: str,
               reason: str) -> Response:
        log.info("/authorize refused: %s", reason,
                 extra={"endpoint": "/authorize", "reason": reason, "error": error})
        return _redirect_error(params, error, description)

    def refused(exc: Exception, params: Mapping[str, str]) -> Response:
        """``exc`` raised for a request whose client and redirect URI are verified: back to
        the client (RFC 6749 section 4.1.2.1), faults as server_error /
        temporarily_unavailable."""
        fault = _fault(exc, "/authorize")
        if fault is not None:
            return _redirect_error(params, fault.error, fault.description)
        assert isinstance(exc, EgovError)
        return refuse(params, _AUTHORIZE_ERRORS.get(exc.reason, "invalid_request"),
                      exc.message, exc.reason)

    async def authorization_request(params: Mapping[str, str]
                                    ) -> m.AuthorizationRequest | Response:
        """The authorization request in ``params`` (a GET's query or a POSTed form), checked
        one way whether it is to show the login form or comes back with the login; or the
        answer that refuses it: a page while the client and redirect URI are not verified, a
        redirect to the client after."""
        client = await checked_client(params)
        if isinstance(client, Response):
            return client
        refusal = _request_refusal(params)
        if refusal is not None:
            return refuse(params, refusal.error, refusal.description, refusal.reason)
        try:
            request: m.AuthorizationRequest = await call(
                service.authorization_request, client_id=client.client_id,
                redirect_uri=params["redirect_uri"], scope=params.get("scope", ""),
                state=params.get("state", ""), nonce=params.get("nonce", ""),
                code_challenge=params.get("code_challenge", ""),
                code_challenge_method=params.get("code_challenge_method", ""),
                acr_values=params.get("acr_values", ""), claims=params.get("claims", ""))
        except Exception as exc:
            return refused(exc, params)
        if "none" in params.get("prompt", "").split():
            # OIDC Core 3.1.2.6: no page may be shown, and no login session outlives its
            # request here, so nobody is logged in already. login, consent and select_account
            # are met by the form: every login is a fresh one, names its account, and the
            # form says what the client will receive.
            return refuse(params, "login_required", "the person must log in",
                          "LOGIN_REQUIRED")
        return request

    async def login_form(params: Mapping[str, str]) -> Response:
        checked = await authorization_request(params)
        if isinstance(checked, Response):
            return checked
        return login_page(params, checked)

    async def authorize_get(request: Request) -> Response:
        try:
            params = _text_fields(request.query_params)
        except InvalidArgument:
            return _message_page(UNKNOWN_CLIENT, 400)
        return await login_form(params)

    def login_failure(exc: Exception, form: Mapping[str, str],
                      request: m.AuthorizationRequest) -> Response:
        fault = _fault(exc, "/authorize")
        if fault is not None:
            return login_page(form, request, _fault_message(fault), fault.status, fault.headers)
        assert isinstance(exc, EgovError)
        if exc.code is Code.RESOURCE_EXHAUSTED:
            wait = exc.metadata.get("retry_after", "") or str(RETRY_AFTER_SECONDS)
            text = CLIENT_LOCKED if exc.reason == "CLIENT_LOCKED" else ACCOUNT_LOCKED
            return login_page(form, request, text.format(wait=_minutes(wait)), 429,
                              {"Retry-After": wait})
        # CREDENTIALS_INVALID, whichever credential was wrong; and anything else the person
        # could have caused: one text, one status.
        return login_page(form, request, WRONG_CREDENTIALS, 401)

    async def authorize_post(request: Request) -> Response:
        try:
            form = await _form(request)
        except InvalidArgument as exc:
            if exc.message == _TOO_LARGE:
                return _message_page("The request is too large.", 413)
            return _message_page("The request is not a valid form.", 400)
        if not any(name in form for name in _LOGIN_FIELDS):
            return await login_form(form)  # the authorization request itself, by POST
        checked = await authorization_request(form)
        if isinstance(checked, Response):
            return checked
        if checked.required_aal >= 2 and not form.get("totp_code"):
            # Asked before the password is checked: the answer says nothing about it.
            return login_page(form, checked, CODE_REQUIRED, 400)
        try:
            session = await call(service.login, checked.client.client_id,
                                 form.get("username", ""), form.get("password", ""),
                                 form.get("totp_code", ""))
        except Exception as exc:
            return login_failure(exc, form, checked)
        try:
            result = await call(service.issue_code, session.login_session_id, checked)
        except Exception as exc:
            return refused(exc, form)
        return RedirectResponse(result.redirect_to, status_code=302, headers=_NO_STORE)

    async def token(request: Request) -> Response:
        try:
            form = await _form(request)
            tokens = await call(service.token, m.TokenRequest(
                grant_type=form.get("grant_type", ""), client_id=form.get("client_id", ""),
                client_assertion=form.get("client_assertion", ""),
                client_assertion_type=form.get("client_assertion_type", ""),
                code=form.get("code", ""), redirect_uri=form.get("redirect_uri", ""),
                code_verifier=form.get("code_verifier", ""),
                refresh_token=form.get("refresh_token", ""), scope=form.get("scope", ""),
                auth_req_id=form.get("auth_req_id", ""),
                subject_token=form.get("subject_token", ""),
                subject_token_type=form.get("subject_token_type", ""),
                act_for=form.get("act_for", ""), audience=form.get("audience", "")))
        except Exception as exc:
            return _oauth_error(exc, "/token")
        body: dict[str, Any] = {"access_token": tokens.access_token,
                                "token_type": tokens.token_type,
                                "expires_in": tokens.expires_in, "scope": tokens.scope}
        if tokens.refresh_token:
            body["refresh_token"] = tokens.refresh_token
        if tokens.id_token:
            body["id_token"] = tokens.id_token
        if tokens.issued_token_type:
            body["issued_token_type"] = tokens.issued_token_type
        return JSONResponse(body, headers=_NO_STORE)

    def bearer_error(error: str, description: str, status: int, **params: str) -> Response:
        """RFC 6750 section 3: the challenge names the error; no error for a missing token."""
        challenge = f'Bearer realm="{_challenge_value(issuer)}"'
        if error:
            challenge += (f', error="{error}", '
                          f'error_description="{_challenge_value(description)}"')
        challenge += "".join(f', {k}="{_challenge_value(v)}"' for k, v in params.items())
        body = {"error": error, "error_description": description} if error else {}
        return JSONResponse(body, status_code=status,
                            headers={**_NO_STORE, "WWW-Authenticate": challenge})

    async def userinfo(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, from_header = header.partition(" ")
        from_header = from_header.strip() if scheme.lower() == "bearer" else ""
        from_body = ""
        if (request.method == "POST" and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded")):
            try:
                from_body = (await _form(request)).get("access_token", "")
            except InvalidArgument as exc:
                return bearer_error("invalid_request", exc.message, 400)
        if from_header and from_body:
            return bearer_error("invalid_request", "more than one method was used to send the "
                                "access token", 400)
        access_token = from_header or from_body
        if not access_token:
            return bearer_error("", "", 401)
        try:
            claims = await call(service.userinfo, access_token)
        except Exception as exc:
            fault = _fault(exc, "/userinfo")
            if fault is not None:
                return _fault_json(fault)
            assert isinstance(exc, EgovError)
            log.info("/userinfo refused: %s", exc.reason,
                     extra={"endpoint": "/userinfo", "reason": exc.reason})
            if exc.code is Code.PERMISSION_DENIED:
                return bearer_error("insufficient_scope", exc.message, 403, scope="openid")
            if exc.code in (Code.UNAUTHENTICATED, Code.NOT_FOUND):
                return bearer_error("invalid_token", exc.message, 401)
            return bearer_error("invalid_request", exc.message, 400)
        return JSONResponse(claims, headers=_NO_STORE)

    async def _client_from_form(form: Mapping[str, str]) -> m.Client:
        client: m.Client = await call(service.authenticate_client, form.get("client_id", ""),
                                      form.get("client_assertion", ""),
                                      form.get("client_assertion_type", ""))
        return client

    async def revoke(request: Request) -> Response:
        try:
            form = await _form(request)
            client = await _client_from_form(form)
            await call(service.revoke, client, form.get("token", ""))
        except Exception as exc:
            # RFC 7009 section 2.2.1: on 503 the client must assume the token still exists.
            return _oauth_error(exc, "/revoke")
        return Response(status_code=200, headers=_NO_STORE)

    async def introspect(request: Request) -> Response:
        try:
            form = await _form(request)
            client = await _client_from_form(form)
            if client.auth_method == "none":
                raise InvalidArgument("INVALID_CLIENT", "introspection needs client auth")
            result = await call(service.introspect, client, form.get("token", ""))
        except Exception as exc:
            return _oauth_error(exc, "/introspect")
        return JSONResponse(result, headers=_NO_STORE)

    #: OpenID CIBA Core 1.0 section 13 (access_denied: the OP refuses before anyone is asked).
    ciba_errors = {"BINDING_MESSAGE_TOO_LONG": ("invalid_binding_message", 400),
                   "BINDING_MESSAGE_INVALID": ("invalid_binding_message", 400),
                   "ACR_NOT_MET": ("access_denied", 403)}

    async def backchannel_authenticate(request: Request) -> Response:
        """CIBA poll mode (OpenID CIBA Core 1.0 section 7)."""
        try:
            form = await _form(request)
            start = await call(service.backchannel_authenticate, form.get("client_id", ""),
                               form.get("client_assertion", ""), form.get("login_hint", ""),
                               form.get("binding_message", ""), form.get("scope", ""),
                               form.get("acr_values", ""))
        except Exception as exc:
            return _oauth_error(exc, "/bc-authorize", ciba_errors)
        return JSONResponse({"auth_req_id": start.auth_req_id, "expires_in": start.expires_in,
                             "interval": start.interval}, headers=_NO_STORE)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/jwks", jwks, methods=["GET"]),
        Route("/authorize", authorize_get, methods=["GET"]),
        Route("/authorize", authorize_post, methods=["POST"]),
        Route("/token", token, methods=["POST"]),
        Route("/userinfo", userinfo, methods=["GET", "POST"]),
        Route("/revoke", revoke, methods=["POST"]),
        Route("/introspect", introspect, methods=["POST"]),
        Route("/bc-authorize", backchannel_authenticate, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ])


__all__ = ["build_http_app"]
