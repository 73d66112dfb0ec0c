"""The verify portal's web application: server-rendered pages that work without JavaScript.

Routes
- ``GET /``: upload form (size limit shown before upload).
- ``POST /verify``: the PDF (form field ``file``, or a bare ``application/pdf`` body) -> report.
  At most ``max_uploads_in_flight`` at once per process (503 with Retry-After beyond); a body
  that stalls is answered 408.
- ``GET /d/{document_id}`` (also ``/verify/{document_id}``): the page a stamp's QR code opens:
  the registry entry, and a form to upload the copy in hand (``POST /verify`` with
  ``expected_document_id``, which is sealed into the report with it).
- ``POST /report``: re-render a sealed report (language switch on the report page).
- ``POST /report.xml``, ``POST /report.pdf``: downloads of a sealed report.
- ``GET /healthz`` (process alive), ``GET /readyz`` (peers' gRPC health).
- ``/static/*``: the stylesheet, the small progressive-enhancement script and icons.

Bad input and unavailable peers become a page with a clear message and a fitting status;
nothing here shows a stack trace. The portal keeps no state: downloads carry the report sealed
(``seal``) in the page's forms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from egov_common.clock import Clock, SystemClock
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .domain.report import (
    ProofCheck,
    RegistryStatus,
    Verdict,
    VerificationReport,
    etsi_xml_with_verdict,
    is_document_id,
)
from .domain.services import (
    DocumentNotFound,
    DocumentRejected,
    PeerUnavailable,
    RejectionReason,
    TrustServices,
)
from .domain.summary_pdf import SummaryFonts, overall_reason, render_summary
from .i18n import DEFAULT_LANGUAGE, Translator, normalise_language
from .seal import SealBroken, open_report, seal_report
from .upload import UploadProblem, UploadRefused, discard_upload, read_upload

log = logging.getLogger("egov_verify_portal")

_PACKAGE = Path(__file__).parent
_LANG_COOKIE = "lang"
_SEALED_FORM_LIMIT = 4 * 1024 * 1024
#: Sealed-report forms (language switch, downloads) read at once: each holds up to
#: ``_SEALED_FORM_LIMIT`` (about three times that while it is parsed), for the few
#: milliseconds a browser takes to send it.
_SEALED_FORMS_IN_FLIGHT = 8
#: Seconds a browser is asked to wait before it tries again when the portal is busy.
RETRY_AFTER_SECONDS = 10
#: Browsers that saw this over HTTPS use only HTTPS for a year (RFC 6797).
STRICT_TRANSPORT_SECURITY = "max-age=31536000"

#: Strict policy: only our own static files; no inline script or style, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


@dataclasses.dataclass(frozen=True)
class PortalConfig:
    """What the web layer needs from the settings (see ``settings``)."""

    max_upload_bytes: int
    seal_key: bytes
    report_ttl: timedelta
    fonts: SummaryFonts
    public_url: str = ""
    max_uploads_in_flight: int = 6
    #: Seconds a request body may go without a byte / may take in all, else 408.
    body_read_timeout: float = 30.0
    upload_deadline: float = 300.0

    @property
    def public_https(self) -> bool:
        """The portal is published over HTTPS (TLS ends at the ingress in front of it)."""
        return self.public_url.lower().startswith("https://")


def served_over_https(config: PortalConfig, scope: Scope) -> bool:
    """Whether the visitor reached the portal over HTTPS: the published URL says so, or the
    connection itself is TLS (or a trusted proxy said so to uvicorn)."""
    return config.public_https or scope.get("scheme") == "https"


class SecurityHeaders:
    """Adds the security headers to every response, errors and static files included, and
    Strict-Transport-Security when the portal is served over HTTPS."""

    def __init__(self, app: ASGIApp, config: PortalConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = dict(SECURITY_HEADERS)
        if served_over_https(self.config, scope):
            wanted["strict-transport-security"] = STRICT_TRANSPORT_SECURITY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in wanted.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Slots:
    """A count of requests holding a scarce resource (memory for a body), at most ``limit``.

    Used from the event loop only, so no lock is needed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    def take(self) -> bool:
        if self.taken >= self.limit:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1


class Portal:
    """Request handlers; one instance per process, holding no per-visitor state."""

    def __init__(self, services: TrustServices, config: PortalConfig, clock: Clock) -> None:
        self.services = services
        self.config = config
        self.clock = clock
        # An upload holds its file in memory until its report is drawn: the count is bounded
        # so that the process stays inside its memory limit (README, "Memory").
        self.uploads = _Slots(config.max_uploads_in_flight)
        self.sealed_forms = _Slots(_SEALED_FORMS_IN_FLIGHT)
        self.templates = Environment(
            loader=FileSystemLoader(_PACKAGE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Imported macros see globals, not the render context.
        self.templates.globals.update(
            Verdict=Verdict, RegistryStatus=RegistryStatus, ProofCheck=ProofCheck
        )

    # ---- language ---------------------------------------------------------------------------

    def language(self, request: Request, form_value: str | None = None) -> str:
        return (
            normalise_language(request.query_params.get("lang"))
            or normalise_language(form_value)
            or normalise_language(request.cookies.get(_LANG_COOKIE))
            or DEFAULT_LANGUAGE
        )

    def page(
        self,
        request: Request,
        template: str,
        language: str,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        t = Translator(language)
        other = "en" if language == "th" else "th"
        html = self.templates.get_template(template).render(
            t=t,
            lang=language,
            other_lang=other,
            max_upload_bytes=self.config.max_upload_bytes,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        response.headers["cache-control"] = "no-store"
        response.headers["content-language"] = language
        if request.cookies.get(_LANG_COOKIE) != language:
            response.set_cookie(
                _LANG_COOKIE,
                language,
                max_age=365 * 24 * 3600,
                httponly=True,
                samesite="lax",
                secure=served_over_https(self.config, request.scope),
            )
        return response

    def error_page(
        self,
        request: Request,
        language: str,
        message: str,
        status_code: int,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        response = self.page(
            request, "error.html", language, status_code=status_code, message=message
        )
        response.headers.update(headers or {})
        return response

    def busy_page(self, request: Request, language: str) -> HTMLResponse:
        """503 with Retry-After: too many bodies in flight (the body is dropped, not kept)."""
        t = Translator(language)
        return self.error_page(
            request, language, t("error_busy"), 503, {"retry-after": str(RETRY_AFTER_SECONDS)}
        )

    def timed_out_page(self, request: Request, language: str) -> HTMLResponse:
        """408 for a client that stopped sending its body; the connection is closed."""
        t = Translator(language)
        return self.error_page(request, language, t("error_timeout"), 408, {"connection": "close"})

    # ---- pages ------------------------------------------------------------------------------

    async def upload_form(self, request: Request) -> Response:
        return self.page(request, "upload.html", self.language(request))

    async def verify(self, request: Request) -> Response:
        language = self.language(request)
        if not self.uploads.take():
            await discard_upload(
                request.stream(),
                max_file_bytes=self.config.max_upload_bytes,
                idle_timeout=self.config.body_read_timeout,
                deadline=self.config.upload_deadline,
            )
            return self.busy_page(request, language)
        try:
            return await self._verify(request, language)
        finally:
            self.uploads.give_back()

    async def _verify(self, request: Request, language: str) -> Response:
        try:
            upload = await read_upload(
                request.headers.get("content-type"),
                request.headers.get("content-length"),
                request.stream(),
                max_file_bytes=self.config.max_upload_bytes,
                idle_timeout=self.config.body_read_timeout,
                deadline=self.config.upload_deadline,
            )
        except UploadRefused as refused:
            return self._refused(request, language, refused.problem)
        language = self.language(request, upload.fields.get("lang"))
        t = Translator(language)
        expected_id = upload.fields.get("expected_document_id", "")
        if expected_id and not is_document_id(expected_id):
            # only the QR page's form sends it, with an id the registry issued
            return self.error_page(request, language, t("error_bad_request"), 400)
        try:
            report = await run_in_threadpool(
                self.services.verify, upload.content, upload.file_name, language=language
            )
        except DocumentRejected as rejected:
            return self._rejected(request, language, rejected.reason)
        except PeerUnavailable:
            return self.error_page(request, language, t("error_unavailable"), 503)
        if report.main_signer is None:
            # document time-stamps alone say nothing about who issued the document
            return self.error_page(request, language, t("error_no_signature"), 422)
        report = dataclasses.replace(report, expected_document_id=expected_id)
        return self._report_page(request, language, report)

    async def reshow_report(self, request: Request) -> Response:
        return await self._with_sealed(request, self._reshow)

    async def download_xml(self, request: Request) -> Response:
        return await self._with_sealed(request, self._xml)

    async def download_pdf(self, request: Request) -> Response:
        return await self._with_sealed(request, self._pdf)

    async def _reshow(
        self, request: Request, language: str, report: VerificationReport
    ) -> Response:
        return self._report_page(request, language, report)

    async def _xml(self, request: Request, language: str, report: VerificationReport) -> Response:
        if not report.etsi_xml:
            t = Translator(language)
            return self.error_page(request, language, t("error_report_expired"), 400)
        return Response(
            etsi_xml_with_verdict(report),
            media_type="application/xml",
            headers=_attachment(_download_name(report, "xml")),
        )

    async def _pdf(self, request: Request, language: str, report: VerificationReport) -> Response:
        t = Translator(language)
        pdf = await run_in_threadpool(
            render_summary, report, t, self.config.fonts, portal_url=self.config.public_url
        )
        return Response(
            pdf, media_type="application/pdf", headers=_attachment(_download_name(report, "pdf"))
        )

    async def document(self, request: Request) -> Response:
        language = self.language(request)
        t = Translator(language)
        document_id = request.path_params["document_id"]
        if not is_document_id(document_id):
            # not an id at all: never repeat a visitor's words as the portal's own message
            return self.error_page(request, language, t("error_page_not_found"), 404)
        try:
            finding = await run_in_threadpool(self.services.registry_entry, document_id)
        except DocumentNotFound:
            return self.error_page(request, language, t("error_not_found", id=document_id), 404)
        except PeerUnavailable:
            return self.error_page(request, language, t("registry_unavailable"), 503)
        # The id asked for, not the registry's answer: a refused answer has no entry.
        return self.page(
            request, "document.html", language, registry=finding, document_id=document_id
        )

    # ---- probes -----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        peers = await run_in_threadpool(self.services.peers_ready)
        ready = all(peers.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "peers": peers},
            status_code=200 if ready else 503,
        )

    # ---- helpers ----------------------------------------------------------------------------

    def _report_page(
        self, request: Request, language: str, report: VerificationReport
    ) -> HTMLResponse:
        t = Translator(language)
        # One verdict and one reason, the report's own: the PDF summary draws the same.
        verdict = report.verdict
        reason = overall_reason(report, t.reason) if verdict is not Verdict.VALID else ""
        sealed = seal_report(
            report, self.config.seal_key, now=self.clock.now(), ttl=self.config.report_ttl
        )
        return self.page(
            request,
            "report.html",
            language,
            report=report,
            verdict=verdict,
            reason=reason,
            sealed=sealed,
        )

    async def _with_sealed(
        self,
        request: Request,
        answer: Callable[[Request, str, VerificationReport], Awaitable[Response]],
    ) -> Response:
        """Read the sealed report of a form and ``answer`` with it, or answer why not."""
        language = self.language(request)
        if not self.sealed_forms.take():
            return self.busy_page(request, language)
        try:
            form = await asyncio.wait_for(self._sealed_form(request), self.config.body_read_timeout)
        except TimeoutError:
            return self.timed_out_page(request, language)
        finally:
            self.sealed_forms.give_back()
        language = self.language(request, form.get("lang"))
        try:
            report = open_report(form.get("report", ""), self.config.seal_key, now=self.clock.now())
        except SealBroken:
            t = Translator(language)
            return self.error_page(request, language, t("error_report_expired"), 400)
        return await answer(request, language, report)

    async def _sealed_form(self, request: Request) -> dict[str, str]:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > _SEALED_FORM_LIMIT:
            return {}
        form = await request.form(max_files=0, max_fields=8, max_part_size=_SEALED_FORM_LIMIT)
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def _refused(self, request: Request, language: str, problem: UploadProblem) -> HTMLResponse:
        t = Translator(language)
        limit = t.size(self.config.max_upload_bytes)
        if problem is UploadProblem.TOO_LARGE:
            return self.error_page(request, language, t("error_too_large", limit=limit), 413)
        if problem is UploadProblem.NOT_PDF:
            return self.error_page(request, language, t("error_not_pdf"), 415)
        if problem is UploadProblem.NO_FILE:
            return self.error_page(request, language, t("error_no_file"), 400)
        if problem is UploadProblem.TIMED_OUT:
            return self.timed_out_page(request, language)
        return self.error_page(request, language, t("error_bad_request"), 400)

    def _rejected(self, request: Request, language: str, reason: RejectionReason) -> HTMLResponse:
        t = Translator(language)
        if reason is RejectionReason.TOO_LARGE:
            limit = t.size(self.config.max_upload_bytes)
            return self.error_page(request, language, t("error_too_large", limit=limit), 413)
        if reason is RejectionReason.ENCRYPTED:
            return self.error_page(request, language, t("error_encrypted"), 422)
        if reason is RejectionReason.EMPTY:
            return self.error_page(request, language, t("error_no_file"), 400)
        return self.error_page(request, language, t("error_broken_pdf"), 422)


def _attachment(file_name: str) -> dict[str, str]:
    return {
        "content-disposition": f'attachment; filename="{file_name}"',
        "cache-control": "no-store",
    }


def _download_name(report: VerificationReport, extension: str) -> str:
    return f"verification-{report.sha256_hex[:12]}.{extension}"


def create_app(
    services: TrustServices, config: PortalConfig, clock: Clock | None = None
) -> ASGIApp:
    """The ASGI application (wrapped in the security-header middleware)."""
    portal = Portal(services, config, clock or SystemClock())

    async def not_found(request: Request, exc: Exception) -> Response:
        language = portal.language(request)
        t = Translator(language)
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return portal.error_page(request, language, t("error_method"), 405)
        if isinstance(exc, HTTPException) and exc.status_code != 404:
            return portal.error_page(request, language, t("error_bad_request"), exc.status_code)
        return portal.error_page(request, language, t("error_page_not_found"), 404)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        language = portal.language(request)
        return portal.error_page(request, language, Translator(language)("error_unavailable"), 500)

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: not_found,
        Exception: server_error,
    }
    app = Starlette(
        routes=[
            Route("/", portal.upload_form, methods=["GET"]),
            Route("/verify", portal.verify, methods=["POST"]),
            Route("/report", portal.reshow_report, methods=["POST"]),
            Route("/report.xml", portal.download_xml, methods=["POST"]),
            Route("/report.pdf", portal.download_pdf, methods=["POST"]),
            Route("/d/{document_id:str}", portal.document, methods=["GET"]),
            # The registry's default QR code URL base is <portal>/verify/<document id>.
            Route("/verify/{document_id:str}", portal.document, methods=["GET"]),
            Route("/healthz", portal.healthz, methods=["GET"]),
            Route("/readyz", portal.readyz, methods=["GET"]),
            Mount("/static", StaticFiles(directory=_PACKAGE / "static"), name="static"),
        ],
        exception_handlers=handlers,
    )
    return SecurityHeaders(app, config)
