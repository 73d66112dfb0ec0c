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


def test_get_credential_shows_a_persons_national_id_only_to_those_who_need_it(keys, identity):
    from egov.keys.v1 import keys_pb2
    from egov_common.auth import Caller, CallerKind, caller_scope
    from egov_keys.servicer import KeysServicer
    from keys_world import ADMIN, SIGNING

    servicer = KeysServicer(keys.credentials, keys.trust)
    credential = create_person(keys, identity)

    def get(caller: Caller) -> keys_pb2.Credential:
        request = keys_pb2.GetCredentialRequest(credential_id=credential.credential_id)
        with caller_scope(caller):
            return servicer.GetCredential(request, None).credential

    masked = f"{PERSON_ID[0]}-{PERSON_ID[1:5]}-xxxxx-xx-{PERSON_ID[-1]}"
    stranger = Caller(
        CallerKind.PERSON, "citizen-portal", claims={"sub": "sub-9999", "identifier": "TH-PID:x"}
    )
    portal = Caller(CallerKind.CLIENT, "citizen-portal", frozenset({"keys:sign"}))
    for caller in (ANON, stranger, portal):
        seen = get(caller)
        assert seen.owner.value == masked
        assert list(seen.certificate_chain) == []  # its serialNumber is PNOTH-<national id>
        # What the rest of the credential says stays visible.
        assert seen.status == keys_pb2.CREDENTIAL_STATUS_ACTIVE
        assert seen.certificate_serial == f"{credential.certificate_serial:x}"
    owner_by_identifier = Caller(
        CallerKind.PERSON, "citizen-portal", claims={"identifier": f"TH-PID:{PERSON_ID}"}
    )
    owner_by_sub = Caller(
        CallerKind.PERSON, "citizen-portal", claims={"sub": credential.created_by}
    )
    auditor = Caller(CallerKind.SERVICE, "auditor", peer_service="auditor")
    for caller in (SIGNING, ADMIN, auditor, owner_by_identifier, owner_by_sub):
        seen = get(caller)
        assert seen.owner.value == PERSON_ID
        assert list(seen.certificate_chain) == keys.credentials.chain(credential)
    # A juristic person's number is register data: its credentials are shown whole.
    from egov_keys.domain.algorithms import KeyAlgorithm
    from egov_keys.domain.pki import OwnerKind
    from egov_pki.identifiers import juristic_number
    from keys_world import AGENCY_ID, AGENCY_NAMES

    seal = keys.credentials.create(
        ANON,
        idempotency_key="seal",
        owner=juristic_number(AGENCY_ID),
        kind=OwnerKind.ELECTRONIC_SEAL,
        algorithm=KeyAlgorithm.ECDSA_P256,
        names=AGENCY_NAMES,
        proof_token=identity.agency_client(),
        backend=None,
    )
    credential = seal
    assert get(ANON).owner.value == AGENCY_ID
    assert len(get(ANON).certificate_chain) == 3
