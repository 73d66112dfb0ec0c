"""``python -m egov_signing``: wire keys, registry and the PAdES domain, serve gRPC."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable

import grpc
from egov.signing.v1 import signing_pb2, signing_pb2_grpc
from egov_common.channels import open_channel
from egov_common.errors import EgovError
from egov_common.server import GrpcService, serve
from egov_common.settings import load_settings_or_exit
from pyhanko_certvalidator import ValidationContext

from .adapters.callers import build_token_verifier
from .adapters.keys import CachedTrustServiceInfo, GrpcKeysPort
from .adapters.memory import keep_large_buffers_out_of_the_heap, release_free_memory
from .adapters.registry import GrpcRegistryPort, RegistryLookup
from .adapters.revocation import AllowListFetcherBackend, RevocationCache
from .adapters.tsa import HttpTimeStamper
from .domain.pdf_input import DocumentLimits
from .domain.signing import PdfSigningService
from .domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from .servicer import SigningServicer
from .settings import SigningSettings
from .spool import SpoolDirectory


class _Verifiers:
    """One DocumentVerifier, built once keys has told us its root (until then: files only)."""

    def __init__(
        self, settings: SigningSettings, trust: CachedTrustServiceInfo, limits: DocumentLimits
    ) -> None:
        self._settings, self._trust, self._limits = settings, trust, limits
        self._lock = threading.Lock()
        self._ready: DocumentVerifier | None = None
        self._files: list[bytes] = []
        for path in settings.trust_anchor_files:
            self._files.append(path.read_bytes())

    def __call__(self) -> DocumentVerifier:
        with self._lock:
            if self._ready is not None:
                return self._ready
            try:
                info = self._trust.get()
            except EgovError:
                info = None
            anchors = list(self._files) + (list(info.root_certificates) if info else [])
            blobs: list[bytes] = []
            for blob in anchors:
                blobs.extend(TrustAnchors.certificates_in(blob))
            fetcher = (
                AllowListFetcherBackend(info.url_prefixes)
                if info is not None and self._settings.fetch_revocation
                else None
            )
            verifier = DocumentVerifier(
                TrustAnchors(blobs),
                limits=self._limits,
                revocation_mode=RevocationMode(self._settings.revocation_mode),
                fetcher_backend=fetcher,
            )
            if info is not None:
                self._ready = verifier
            return verifier


class _SigningContexts:
    """A fresh ValidationContext per B-LT/B-LTA document (it collects that document's DSS
    material), over keys' CA certificates parsed once and one fetcher backend restricted to
    keys' OCSP/CRL URLs, whose session and revocation cache outlive the documents."""

    def __init__(self, trust: CachedTrustServiceInfo, cache: RevocationCache) -> None:
        self._trust = trust
        self._cache = cache
        self._lock = threading.Lock()
        self._parts: tuple[TrustAnchors, TrustAnchors, AllowListFetcherBackend] | None = None

    def _ready(self) -> tuple[TrustAnchors, TrustAnchors, AllowListFetcherBackend]:
        with self._lock:
            if self._parts is None:
                info = self._trust.get()  # cached for the life of the process once fetched
                self._parts = (
                    TrustAnchors(info.root_certificates),
                    TrustAnchors(info.all_certificates),
                    AllowListFetcherBackend(info.url_prefixes, cache=self._cache),
                )
            return self._parts

    def __call__(self) -> ValidationContext:
        roots, others, fetchers = self._ready()
        return ValidationContext(
            trust_roots=list(roots.certificates),
            other_certs=list(others.certificates),
            allow_fetching=True,
            fetcher_backend=fetchers,
            revocation_mode="hard-fail",
        )

    def close(self) -> None:
        if self._parts is not None:
            self._parts[2].close_session()


def _close(
    *channels: grpc.Channel,
    spools: SpoolDirectory,
    timestamper: HttpTimeStamper,
    contexts: _SigningContexts,
) -> None:
    for channel in channels:
        channel.close()
    spools.remove()
    timestamper.close()
    contexts.close()


def _build(settings: SigningSettings) -> tuple[SigningServicer, Callable[[], None]]:
    """The servicer of one serving process and what closes it: its own channels to keys and
    the registry (gRPC does not survive a fork), caches, HTTP session and spool directory."""
    keys_channel = open_channel(settings.keys_address, settings)
    registry_channel = open_channel(settings.registry_address, settings)
    trust = CachedTrustServiceInfo(keys_channel, service_token=settings.keys_token)
    limits = DocumentLimits(
        max_bytes=settings.max_document_bytes,
        max_pages=settings.max_pages,
        max_signatures=settings.max_signatures,
        max_decoded_bytes=settings.max_decoded_bytes,
        deadline_seconds=settings.document_deadline,
    )

    contexts = _SigningContexts(trust, RevocationCache(settings.revocation_cache_seconds))
    timestamper = HttpTimeStamper(lambda: trust.get().tsa_url)
    signing = PdfSigningService(
        GrpcKeysPort(keys_channel, service_token=settings.keys_token),
        registry=GrpcRegistryPort(registry_channel, token=settings.registry_token),
        timestamper=timestamper,
        validation_context_factory=contexts,
        limits=limits,
        font_path=str(settings.stamp_font_file) if settings.stamp_font_file else None,
        timestamp_reserve_bytes=settings.timestamp_reserve_bytes,
    )
    spools = SpoolDirectory(settings.spool_dir, memory_bytes=settings.spool_memory_bytes)
    log_key = (
        settings.registry_log_key_file.read_bytes() if settings.registry_log_key_file else None
    )
    servicer = SigningServicer(
        signing,
        _Verifiers(settings, trust, limits),
        limits=limits,
        registry=GrpcRegistryPort(registry_channel, token=settings.registry_token),
        registry_checker=RegistryLookup(registry_channel, log_key=log_key),
        max_batch_documents=settings.max_batch_documents,
        spools=spools,
        after_large_document=release_free_memory,
        max_message_bytes=settings.max_message_bytes,
    )
    return servicer, lambda: _close(
        keys_channel,
        registry_channel,
        spools=spools,
        timestamper=timestamper,
        contexts=contexts,
    )


def quiet_libraries() -> None:
    """Levels for the libraries' own loggers, set once at start-up.

    pyHanko logs a traceback for every signature it cannot validate; those failures are
    verdicts in our reports, and tracebacks could carry certificate subjects into the logs.
    fontTools logs some 40 INFO lines per visible stamp while it subsets the font, one of them
    naming every glyph drawn: the letters of the signer's name and of the reason.
    """
    for noisy in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.WARNING)


def main() -> None:
    settings = load_settings_or_exit(SigningSettings, "SIGNING")
    keep_large_buffers_out_of_the_heap()
    quiet_libraries()
    # Each serving process (EGOV_SIGNING_PROCESSES workers, or this one) builds its own.
    built: list[tuple[SigningServicer, Callable[[], None]]] = []

    def start(_worker: int) -> None:
        built.append(_build(settings))
        # Everything imported and built so far lives as long as the process: keep it out of
        # the cyclic collector's full passes (each walked ~120k objects, ~70 ms, every few
        # hundred documents, as pyHanko and asn1crypto allocate heavily).
        gc.freeze()

    def shutdown() -> None:
        for _, close in built:
            close()

    service_name = signing_pb2.DESCRIPTOR.services_by_name["SigningService"].full_name
    serve(
        settings,
        [
            GrpcService(
                service_name,
                lambda server: signing_pb2_grpc.add_SigningServiceServicer_to_server(
                    built[0][0], server
                ),
            )
        ],
        token_verifier=build_token_verifier(
            issuer=settings.token_issuer,
            jwks_url=settings.token_jwks_url,
            audience=settings.token_audience,
        ),
        on_worker_start=start,
        on_shutdown=shutdown,
    )


if __name__ == "__main__":
    main()
