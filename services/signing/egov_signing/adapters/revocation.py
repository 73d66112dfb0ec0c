"""Revocation fetching restricted to our own trust services.

A validator that fetches whatever OCSP or CRL URL a certificate names can be made to call any
host (SSRF) by a crafted PDF. These fetchers refuse every URL that does not start with one of
the configured prefixes (the keys service's OCSP and CRL URLs).

All fetchers of one backend share a ``requests.Session`` (kept-alive connections instead of a
new TCP connection per OCSP request). With ``cache_seconds`` the backend also keeps the OCSP
responses and CRLs it fetched, each until the earlier of its own nextUpdate and
``cache_seconds``: that is for signing, where they are DSS material for our own chain (keys
refuses to sign with a revoked credential whatever a cached answer says); verification uses a
backend without a cache, so its answers are always current.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import requests
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from pyhanko_certvalidator.authority import Authority
from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers, FetchLimits
from pyhanko_certvalidator.fetchers.common_utils import FetchBudget
from pyhanko_certvalidator.fetchers.requests_fetchers.cert_fetch_client import (
    RequestsCertificateFetcher,
)
from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
from pyhanko_certvalidator.fetchers.requests_fetchers.ocsp_client import RequestsOCSPFetcher
from pyhanko_certvalidator.util import issuer_serial

__all__ = ["AllowListFetcherBackend", "RevocationCache"]


class RevocationCache:
    """DER of fetched OCSP responses and CRLs, each kept until the earlier of its nextUpdate and
    ``max_age_seconds`` after it was fetched. Thread-safe."""

    def __init__(
        self,
        max_age_seconds: float,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age_seconds
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, bytes]] = {}

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._monotonic() >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Hashable, der: bytes, next_update: dt.datetime | None) -> None:
        """Keep ``der``; an answer without nextUpdate, or already past it, is not kept."""
        if next_update is None:
            return
        left = min(self._max_age, (next_update - self._now()).total_seconds())
        if left <= 0:
            return
        with self._lock:
            self._entries[key] = (self._monotonic() + left, der)


def _ocsp_next_update(response: asn1_ocsp.OCSPResponse) -> dt.datetime | None:
    try:
        basic = response["response_bytes"]["response"].parsed
        updates = [
            single["next_update"].native for single in basic["tbs_response_data"]["responses"]
        ]
    except (KeyError, TypeError, ValueError):
        return None
    if not updates or any(u is None for u in updates):
        return None
    return min(updates)  # type: ignore[no-any-return]


def _crl_next_update(crl: asn1_crl.CertificateList) -> dt.datetime | None:
    try:
        value: dt.datetime | None = crl["tbs_cert_list"]["next_update"].native
    except (KeyError, TypeError, ValueError):
        return None
    return value


class _AllowList:
    _prefixes: tuple[str, ...]
    _session: requests.Session
    _cache: RevocationCache | None
    user_agent: str
    per_request_timeout: float

    def _check(self, url: str) -> None:
        if not any(url.startswith(prefix) for prefix in self._prefixes):
            raise requests.RequestException(f"fetching from {url[:80]} is not allowed")

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self._check(url)
        response = self._session.request(method, url, timeout=self.per_request_timeout, **kwargs)
        if response.status_code != 200:
            raise requests.RequestException(f"status code {response.status_code}")
        return response

    # pyhanko-certvalidator's own _get/_post, through the shared session
    def _get(self, url, *, acceptable_content_types):  # type: ignore[no-untyped-def]
        headers = {"Accept": ",".join(acceptable_content_types), "User-Agent": self.user_agent}
        return asyncio.to_thread(self._request, "GET", url, headers=headers)

    def _post(self, url, data, *, content_type, acceptable_content_types):  # type: ignore[no-untyped-def]
        headers = {
            "Accept": ",".join(acceptable_content_types),
            "User-Agent": self.user_agent,
            "Content-Type": content_type,
        }
        return asyncio.to_thread(self._request, "POST", url, headers=headers, data=data)


class _OCSP(_AllowList, RequestsOCSPFetcher):
    async def _fetch(self, cert, authority: Authority):  # type: ignore[no-untyped-def]
        if self._cache is None:
            return await super()._fetch(cert, authority)
        key = ("ocsp", issuer_serial(cert), authority.hashable)
        der = self._cache.get(key)
        if der is not None:
            return asn1_ocsp.OCSPResponse.load(der)
        response = await super()._fetch(cert, authority)
        self._cache.put(key, response.dump(), _ocsp_next_update(response))
        return response


class _CRL(_AllowList, RequestsCRLFetcher):
    async def _fetch_single(self, url):  # type: ignore[no-untyped-def]
        if self._cache is None:
            return await super()._fetch_single(url)  # type: ignore[no-untyped-call]
        key = ("crl", url)
        der = self._cache.get(key)
        if der is None:
            crl = await super()._fetch_single(url)  # type: ignore[no-untyped-call]
            self._cache.put(key, crl.dump(), _crl_next_update(crl))
            return crl

        async def cached() -> asn1_crl.CertificateList:
            return asn1_crl.CertificateList.load(der)

        # through the fetcher's own bookkeeping, so the CRL counts as fetched (DSS material)
        return await self._perform_fetch(url, cached)  # type: ignore[no-untyped-call]


class _Certs(_AllowList, RequestsCertificateFetcher):
    _cache = None


class AllowListFetcherBackend(FetcherBackend):
    """pyhanko-certvalidator fetchers that only reach URLs under ``prefixes``, over one shared
    session; with ``cache``, OCSP responses and CRLs are reused within their validity."""

    def __init__(
        self,
        prefixes: Iterable[str],
        *,
        per_request_timeout: float = 5.0,
        limits: FetchLimits | None = None,
        cache: RevocationCache | None = None,
    ) -> None:
        self._prefixes = tuple(p for p in prefixes if p)
        self._timeout = per_request_timeout
        self._limits = limits or FetchLimits()
        self._cache = cache
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def get_fetchers(self) -> Fetchers:
        budget = FetchBudget(self._limits)
        ocsp = _OCSP(per_request_timeout=self._timeout, budget=budget)
        crl = _CRL(per_request_timeout=self._timeout, budget=budget)  # type: ignore[no-untyped-call]
        certs = _Certs(per_request_timeout=self._timeout, budget=budget)
        for fetcher in (ocsp, crl, certs):
            fetcher._prefixes = self._prefixes
            fetcher._session = self._session
        ocsp._cache = crl._cache = self._cache
        return Fetchers(ocsp_fetcher=ocsp, crl_fetcher=crl, cert_fetcher=certs)

    async def close(self) -> None:
        return None

    def close_session(self) -> None:
        self._session.close()
