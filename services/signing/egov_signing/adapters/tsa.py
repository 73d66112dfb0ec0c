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
    so the service can start before keys publishes its TSA URL."""

    def __init__(self, url: Callable[[], str], *, timeout: float = 10.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._url = url
        self._timeout = timeout

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                reply = await client.post(
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
