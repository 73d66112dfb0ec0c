"""OIDC HTTP endpoints beside gRPC, so unmodified OpenID Connect clients work.

``/.well-known/openid-configuration`` (OIDC Discovery 1.0), ``/jwks`` (RFC 7517), ``/authorize``
(a minimal login form: password + TOTP), ``/token`` (RFC 6749, PKCE RFC 7636, RFC 7523 client
assertions, RFC 8693 token exchange, CIBA poll), ``/userinfo``, ``/revoke`` (RFC 7009),
``/introspect`` (RFC 7662). Every handler translates and delegates to
:class:`~egov_identity.domain.service.IdentityService`.
"""

from __future__ import annotations

import html
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from egov_common.errors import (
    Code,
    EgovError,
    InvalidArgument,
    NotFound,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from egov_identity.domain import model as m
from egov_identity.domain.service import TRUST_FRAMEWORK, IdentityService

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_OAUTH_ERRORS = {
    "INVALID_GRANT", "INVALID_CLIENT", "UNSUPPORTED_GRANT_TYPE", "INVALID_SCOPE",
    "AUTHORIZATION_PENDING", "SLOW_DOWN", "EXPIRED_TOKEN", "ACCESS_DENIED",
    "UNAUTHORIZED_CLIENT", "INVALID_REQUEST",
}
_MAX_FORM_BYTES = 64 * 1024


def _oauth_error(exc: EgovError) -> JSONResponse:
    if exc.reason in _OAUTH_ERRORS:
        error = exc.reason.lower()
    elif exc.code is Code.UNAUTHENTICATED:
        error = "invalid_client" if exc.reason.startswith("CLIENT") else "invalid_token"
    elif exc.code is Code.PERMISSION_DENIED:
        error = "access_denied"
    elif exc.code is Code.RESOURCE_EXHAUSTED:
        error = "slow_down" if exc.reason == "SLOW_DOWN" else "temporarily_unavailable"
    else:
        error = "invalid_request"
    status = 401 if error == "invalid_client" else 400
    return JSONResponse({"error": error, "error_description": exc.message, "reason": exc.reason},
                        status_code=status, headers=_NO_STORE)


async def _form(request: Request) -> dict[str, str]:
    length = int(request.headers.get("content-length") or 0)
    if length > _MAX_FORM_BYTES:
        raise InvalidArgument("INVALID_REQUEST", "request too large")
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


_LOGIN_PAGE = """<!doctype html>
<html lang="th"><head><meta charset="utf-8"><title>Digital ID login</title></head>
<body><h1>เข้าสู่ระบบ Digital ID / Digital ID login</h1>
<p>{client}</p>{error}
<form method="post" action="authorize">
{hidden}
<label>Login name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<label>Authenticator code <input name="totp_code" inputmode="numeric"></label>
<button type="submit">Log in</button>
</form></body></html>"""

_AUTHORIZE_PARAMS = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                     "code_challenge_method", "acr_values", "claims", "response_type")


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
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": sorted(m.PERSON_SCOPES),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr",
                                 "amr", "at_hash", "name", "given_name", "family_name",
                                 "birthdate", "identifier", "verified_claims"],
            "acr_values_supported": ["urn:egov:aal:1", "urn:egov:aal:2", "urn:egov:aal:3"],
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
        keys = await call(service.keyring.jwks)
        return JSONResponse(keys, headers={"Cache-Control": "public, max-age=60"})

    def login_page(params: Mapping[str, str], client_name: str, error: str = "",
                   status: int = 200) -> HTMLResponse:
        hidden = "\n".join(
            f'<input type="hidden" name="{k}" value="{html.escape(params.get(k, ""))}">'
            for k in _AUTHORIZE_PARAMS)
        page = _LOGIN_PAGE.format(
            client=html.escape(client_name), hidden=hidden,
            error=f'<p role="alert">{html.escape(error)}</p>' if error else "")
        return HTMLResponse(page, status_code=status, headers={
            **_NO_STORE, "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; form-action 'self'"})

    def _check_client(params: Mapping[str, str]) -> m.Client:
        client = service.get_client(params.get("client_id", ""))
        if params.get("redirect_uri", "") not in client.redirect_uris:
            raise InvalidArgument("REDIRECT_URI_MISMATCH", "redirect URI is not registered")
        return client

    def _redirect_error(params: Mapping[str, str], error: str, description: str) -> Response:
        query = {"error": error, "error_description": description, "iss": issuer}
        if params.get("state"):
            query["state"] = params["state"]
        uri = params["redirect_uri"]
        sep = "&" if urllib.parse.urlsplit(uri).query else "?"
        return RedirectResponse(uri + sep + urllib.parse.urlencode(query), status_code=302)

    async def authorize_get(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            client = await call(_check_client, params)
        except (NotFound, InvalidArgument):
            # Never redirect to an unverified URI (RFC 6749 section 4.1.2.1).
            return HTMLResponse("<p>Unknown client or redirect URI.</p>", status_code=400)
        if params.get("response_type") != "code":
            return _redirect_error(params, "unsupported_response_type", "only code is supported")
        return login_page(params, client.client_name)

    async def authorize_post(request: Request) -> Response:
        form = await _form(request)
        try:
            client = await call(_check_client, form)
        except (NotFound, InvalidArgument):
            return HTMLResponse("<p>Unknown client or redirect URI.</p>", status_code=400)
        try:
            session = await call(service.login, client.client_id, form.get("username", ""),
                                 form.get("password", ""), form.get("totp_code", ""))
        except EgovError as exc:
            if exc.code is Code.RESOURCE_EXHAUSTED:
                return login_page(form, client.client_name, "Too many attempts. Try later.",
                                  429)
            return login_page(form, client.client_name,
                              "Login name, password or code is wrong.", 401)
        try:
            result = await call(
                service.authorize, login_session_id=session.login_session_id,
                client_id=client.client_id, redirect_uri=form["redirect_uri"],
                scope=form.get("scope", ""), state=form.get("state", ""),
                nonce=form.get("nonce", ""), code_challenge=form.get("code_challenge", ""),
                code_challenge_method=form.get("code_challenge_method", ""),
                acr_values=form.get("acr_values", ""), claims=form.get("claims", ""))
        except EgovError as exc:
            error = {"SCOPE_INVALID": "invalid_scope", "ACR_NOT_MET": "access_denied",
                     "UNAUTHORIZED_CLIENT": "unauthorized_client"}.get(exc.reason,
                                                                       "invalid_request")
            return _redirect_error(form, error, exc.message)
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
        except EgovError as exc:
            return _oauth_error(exc)
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

    async def userinfo(request: Request) -> Response:
        try:
            claims = await call(service.userinfo, _bearer(request))
        except EgovError as exc:
            error = "insufficient_scope" if exc.code is Code.PERMISSION_DENIED else "invalid_token"
            return JSONResponse({"error": error}, status_code=403 if error ==
                                "insufficient_scope" else 401,
                                headers={"WWW-Authenticate": f'Bearer error="{error}"'})
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
        except EgovError as exc:
            return _oauth_error(exc)
        return Response(status_code=200, headers=_NO_STORE)

    async def introspect(request: Request) -> Response:
        try:
            form = await _form(request)
            client = await _client_from_form(form)
            if client.auth_method == "none":
                raise InvalidArgument("INVALID_CLIENT", "introspection needs client auth")
            result = await call(service.introspect, form.get("token", ""))
        except EgovError as exc:
            return _oauth_error(exc)
        return JSONResponse(result, headers=_NO_STORE)

    async def backchannel_authenticate(request: Request) -> Response:
        """CIBA poll mode (OpenID CIBA Core 1.0 section 7)."""
        try:
            form = await _form(request)
            start = await call(service.backchannel_authenticate, form.get("client_id", ""),
                               form.get("client_assertion", ""), form.get("login_hint", ""),
                               form.get("binding_message", ""), form.get("scope", ""),
                               form.get("acr_values", ""))
        except EgovError as exc:
            return _oauth_error(exc)
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
