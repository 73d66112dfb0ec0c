"""HTTP endpoints refuse what they do not serve; credentials are listed only for their owner."""

from __future__ import annotations

import asyncio

import httpx
from cryptography import x509
from egov_keys.http import MAX_REQUEST_BYTES, build_http_app
from egov_pki.identifiers import national_id
from keys_world import ANON, OTHER_PERSON_ID, PERSON_ID
from test_keys_sole_control import create_person, reason_of


class _Client:
    """Calls the ASGI app in process (no server, no Starlette TestClient)."""

    def __init__(self, app) -> None:
        self._transport = httpx.ASGITransport(app=app)

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self._transport, base_url="http://k") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str) -> httpx.Response:
        return self._request("GET", url)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self._request("POST", url, **kwargs)


def test_http_serves_certificates_and_crls_and_refuses_the_rest(keys):
    client = _Client(build_http_app(keys.trust))
    root = client.get("/ca/root.crt")
    assert root.status_code == 200 and root.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(root.content).subject == (
        keys.trust.authority("root").certificate.subject
    )
    crl = client.get("/crl/legal-person.crl")
    assert crl.status_code == 200
    assert x509.load_der_x509_crl(crl.content).issuer == (
        keys.trust.authority("legal-person").certificate.subject
    )
    assert client.get("/ca/nope.crt").status_code == 404
    assert client.get("/crl/tsa.crl").status_code == 404
    assert (
        client.post("/ocsp", content=b"x", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    assert client.post("/tsa", content=b"x").status_code == 415
    too_big = b"\x00" * (MAX_REQUEST_BYTES + 1)
    assert (
        client.post(
            "/tsa", content=too_big, headers={"content-type": "application/timestamp-query"}
        ).status_code
        == 413
    )
    assert client.get("/ocsp/!!!not-base64").status_code == 200  # an OCSP malformedRequest


def test_credentials_are_listed_for_their_owner_page_by_page(keys, identity):
    ids = {create_person(keys, identity, key=f"list-{i}").credential_id for i in range(3)}
    seen: list[str] = []
    token = ""
    while True:
        page, token = keys.credentials.list_credentials(
            ANON,
            owner=national_id(PERSON_ID),
            proof_token=identity.person(),
            status=None,
            page_size=2,
            page_token=token,
        )
        seen += [c.credential_id for c in page]
        if not token:
            break
    assert set(seen) == ids and len(seen) == 3
    assert (
        reason_of(
            lambda: keys.credentials.list_credentials(
                ANON,
                owner=national_id(PERSON_ID),
                proof_token=identity.person(OTHER_PERSON_ID),
                status=None,
                page_size=0,
                page_token="",
            )
        )
        == "PERMISSION_DENIED/OWNER_MISMATCH"
    )
    assert (
        reason_of(
            lambda: keys.credentials.list_credentials(
                ANON,
                owner=national_id(PERSON_ID),
                proof_token=identity.person(),
                status=None,
                page_size=0,
                page_token="%%%",
            )
        )
        == "INVALID_ARGUMENT/PAGE_TOKEN_INVALID"
    )
