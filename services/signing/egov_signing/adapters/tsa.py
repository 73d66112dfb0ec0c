"""The keys service's RFC 3161 time-stamp authority over HTTP, for pyHanko."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from asn1crypto import tsp
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

__all__ = ["HttpTimeStamper"]


class HttpTimeStamper(TimeStamper):
    """RFC 3161 over HTTP (``application/timestamp-query``). ``url`` is resolved on first use,
    so the service can start before keys publishes its TSA URL.

    One ``httpx.Client`` (thread-safe, with a pool of kept-alive connections) serves every
    request of the process: building a client per request cost a new TCP connection and, worse,
    a fresh TLS context that loads the system CA bundle (tens of milliseconds of CPU) per
    time-stamp, twice per B-LTA signature. The request is made synchronously from pyHanko's
    coroutine: each worker thread runs its own event loop with one document on it, so nothing
    else waits on that loop meanwhile.
    """

    def __init__(
        self,
        url: Callable[[], str],
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._url = url
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )

    def close(self) -> None:
        self._client.close()

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            reply = self._client.post(
                self._url(),
                content=req.dump(),
                headers={"Content-Type": "application/timestamp-query"},
            )
        except httpx.HTTPError as err:
            raise TimestampRequestError("the time-stamp authority is unreachable") from err
        if reply.status_code != 200 or not reply.headers.get("content-type", "").startswith(
            "application/timestamp-reply"
        ):
            raise TimestampRequestError(f"the time-stamp authority answered {reply.status_code}")
        return tsp.TimeStampResp.load(reply.content)
