"""HTTP endpoints the world expects, at the URLs written into our certificates.

- ``GET /ca/<name>.crt``: CA, OCSP-signer and TSA certificates (DER, AIA caIssuers);
- ``GET /crl/<name>.crl``: the CA's current CRL (DER, CRL distribution point);
- ``GET /ocsp/<base64 request>`` and ``POST /ocsp``: RFC 6960 responder (appendix A);
- ``POST /tsa``: RFC 3161 time-stamp authority over HTTP (section 3.4);
- ``GET /healthz``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import urllib.parse

from egov_common.errors import NotFound, Unavailable
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from egov_keys.trust import TrustServices

__all__ = ["build_http_app"]

log = logging.getLogger("egov.keys.http")

MAX_REQUEST_BYTES = 64 * 1024


async def _body(request: Request) -> bytes | None:
    """The body, or None when larger than MAX_REQUEST_BYTES (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_http_app(trust: TrustServices) -> Starlette:
    async def ca_certificate(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            der = trust.certificate_der(name)
        except NotFound:
            return PlainTextResponse("not found", status_code=404)
        return Response(
            der,
            media_type="application/pkix-cert",
            headers={"cache-control": "public, max-age=86400"},
        )

    async def crl(request: Request) -> Response:
        try:
            der = await run_in_threadpool(trust.crl, request.path_params["name"])
        except NotFound:
            return PlainTextResponse("not found", status_code=404)
        except Unavailable:  # the CA is being replaced (bootstrap): its CRL follows shortly
            return PlainTextResponse("unavailable", status_code=503, headers={"retry-after": "5"})
        return Response(
            der, media_type="application/pkix-crl", headers={"cache-control": "public, max-age=300"}
        )

    def _ocsp_response(der: bytes) -> Response:
        answer = trust.ocsp(der)
        return Response(
            answer.der,
            media_type="application/ocsp-response",
            headers={"cache-control": "no-cache"},
        )

    async def ocsp_post(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/ocsp-request"
        ):
            return PlainTextResponse("expected application/ocsp-request", status_code=415)
        body = await _body(request)
        if body is None:
            return PlainTextResponse("request too large", status_code=413)
        return await run_in_threadpool(_ocsp_response, body)

    async def ocsp_get(request: Request) -> Response:
        encoded = urllib.parse.unquote(request.path_params["encoded"])
        if len(encoded) > MAX_REQUEST_BYTES:
            return PlainTextResponse("request too large", status_code=413)
        try:
            der = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            try:
                der = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                return await run_in_threadpool(_ocsp_response, b"")
        return await run_in_threadpool(_ocsp_response, der)

    async def tsa(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/timestamp-query"
        ):
            return PlainTextResponse("expected application/timestamp-query", status_code=415)
        body = await _body(request)
        if body is None:
            return PlainTextResponse("request too large", status_code=413)
        answer = await run_in_threadpool(trust.timestamp, body)
        return Response(answer.der, media_type="application/timestamp-reply")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/ca/{name}.crt", ca_certificate, methods=["GET"]),
            Route("/crl/{name}.crl", crl, methods=["GET"]),
            Route("/ocsp", ocsp_post, methods=["POST"]),
            Route("/ocsp/", ocsp_post, methods=["POST"]),
            Route("/ocsp/{encoded:path}", ocsp_get, methods=["GET"]),
            Route("/tsa", tsa, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
