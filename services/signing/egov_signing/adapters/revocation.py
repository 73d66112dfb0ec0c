"""Revocation fetching restricted to our own trust services.

A validator that fetches whatever OCSP or CRL URL a certificate names can be made to call any
host (SSRF) by a crafted PDF. These fetchers refuse every URL that does not start with one of
the configured prefixes (the keys service's OCSP and CRL URLs).
"""

from __future__ import annotations

from collections.abc import Iterable

import requests
from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers, FetchLimits
from pyhanko_certvalidator.fetchers.common_utils import FetchBudget
from pyhanko_certvalidator.fetchers.requests_fetchers.cert_fetch_client import (
    RequestsCertificateFetcher,
)
from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
from pyhanko_certvalidator.fetchers.requests_fetchers.ocsp_client import RequestsOCSPFetcher

__all__ = ["AllowListFetcherBackend"]


class _AllowList:
    _prefixes: tuple[str, ...]

    def _check(self, url: str) -> None:
        if not any(url.startswith(prefix) for prefix in self._prefixes):
            raise requests.RequestException(f"fetching from {url[:80]} is not allowed")

    def _get(self, url, *, acceptable_content_types):  # type: ignore[no-untyped-def]
        self._check(url)
        return super()._get(url, acceptable_content_types=acceptable_content_types)  # type: ignore[misc]

    def _post(self, url, data, *, content_type, acceptable_content_types):  # type: ignore[no-untyped-def]
        self._check(url)
        return super()._post(  # type: ignore[misc]
            url,
            data,
            content_type=content_type,
            acceptable_content_types=acceptable_content_types,
        )


class _OCSP(_AllowList, RequestsOCSPFetcher):
    pass


class _CRL(_AllowList, RequestsCRLFetcher):
    pass


class _Certs(_AllowList, RequestsCertificateFetcher):
    pass


class AllowListFetcherBackend(FetcherBackend):
    """pyhanko-certvalidator fetchers that only reach URLs under ``prefixes``."""

    def __init__(
        self,
        prefixes: Iterable[str],
        *,
        per_request_timeout: float = 5.0,
        limits: FetchLimits | None = None,
    ) -> None:
        self._prefixes = tuple(p for p in prefixes if p)
        self._timeout = per_request_timeout
        self._limits = limits or FetchLimits()

    def get_fetchers(self) -> Fetchers:
        budget = FetchBudget(self._limits)
        ocsp = _OCSP(per_request_timeout=self._timeout, budget=budget)
        crl = _CRL(per_request_timeout=self._timeout, budget=budget)  # type: ignore[no-untyped-call]
        certs = _Certs(per_request_timeout=self._timeout, budget=budget)
        for fetcher in (ocsp, crl, certs):
            fetcher._prefixes = self._prefixes
        return Fetchers(ocsp_fetcher=ocsp, crl_fetcher=crl, cert_fetcher=certs)

    async def close(self) -> None:
        return None
