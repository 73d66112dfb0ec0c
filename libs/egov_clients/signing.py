"""Typed client of the signing service (``egov.signing.v1``).

    with SigningClient("127.0.0.1:50054", token=access_token) as client:
        signed = client.sign_document(Path("in.pdf"), credential_id="cred-...",
                                      authorization_proof=id_token, level="B-LT")
        Path("out.pdf").write_bytes(signed.pdf)
        report = client.verify_document(signed.pdf, include_etsi_xml=True)
        print(report.summary)

Uploads are streamed in 256 KiB chunks (the server buffers less of a large upload than with
the 1 MiB maximum); the signed PDF is reassembled from the response stream.
Errors from the server arrive as ``egov_common.errors.EgovError`` subclasses with their reason
(e.g. ``InvalidArgument`` ``PDF_MALFORMED``, ``Unauthenticated`` ``SAD_EXPIRED`` from keys).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import grpc
from egov.registry.v1 import registry_pb2  # noqa: F401 - registers types used by signing
from egov.signing.v1 import signing_pb2 as pb
from egov.signing.v1 import signing_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_common.errors import Internal
from egov_common.status import from_rpc_error
from google.protobuf import timestamp_pb2

__all__ = [
    "BatchDocument",
    "SignedPdf",
    "SigningClient",
    "Stamp",
    "registration",
]

CHUNK_BYTES = 256 * 1024  # messages well under the 1 MiB maximum: the server buffers less of them

_LEVELS = {
    "B-B": crypto_pb2.PADES_LEVEL_B_B,
    "B-T": crypto_pb2.PADES_LEVEL_B_T,
    "B-LT": crypto_pb2.PADES_LEVEL_B_LT,
    "B-LTA": crypto_pb2.PADES_LEVEL_B_LTA,
}
_NAMESPACES = {
    "TH-PID": party_pb2.IDENTIFIER_NAMESPACE_TH_PID,
    "TH-JUR": party_pb2.IDENTIFIER_NAMESPACE_TH_JUR,
    "PASSPORT": party_pb2.IDENTIFIER_NAMESPACE_PASSPORT,
}


def _party(identifier: str) -> party_pb2.PartyIdentifier:
    namespace, _, value = identifier.partition(":")
    if namespace not in _NAMESPACES or not value:
        raise ValueError(f"expected <TH-PID|TH-JUR|PASSPORT>:<value>, got {identifier!r}")
    return party_pb2.PartyIdentifier(namespace=_NAMESPACES[namespace], value=value)


def _timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


def registration(
    *,
    issuer: str,
    document_type: str,
    idempotency_key: str,
    subject: str = "",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
) -> pb.RegistrationRequest:
    """A RegistrationRequest; identifiers as ``"TH-JUR:0105500000001"``."""
    request = pb.RegistrationRequest(
        issuer=_party(issuer),
        document_type=document_type,
        idempotency_key=idempotency_key,
        metadata=dict(metadata or {}),
    )
    if subject:
        request.subject.CopyFrom(_party(subject))
    if valid_from is not None:
        request.valid_from.CopyFrom(_timestamp(valid_from))
    if valid_until is not None:
        request.valid_until.CopyFrom(_timestamp(valid_until))
    return request


@dataclass(frozen=True)
class Stamp:
    """A visible stamp: ``page`` 1-based (0 = last), ``box`` (x1, y1, x2, y2) in points."""

    language: str = "th"
    page: int = 0
    include_qr_code: bool = False
    box: tuple[float, float, float, float] | None = None

    def to_proto(self) -> pb.VisibleStamp:
        stamp = pb.VisibleStamp(
            page=self.page, language=self.language, include_qr_code=self.include_qr_code
        )
        if self.box is not None:
            stamp.box.CopyFrom(
                pb.Rectangle(x1=self.box[0], y1=self.box[1], x2=self.box[2], y2=self.box[3])
            )
        return stamp


@dataclass(frozen=True)
class SignedPdf:
    pdf: bytes
    result: pb.SignResult

    @property
    def registered(self) -> bool:
        return bool(self.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED)


@dataclass(frozen=True)
class BatchDocument:
    client_reference: str
    pdf: bytes
    registration: pb.RegistrationRequest | None = None


def _read(pdf: bytes | Path | str) -> bytes:
    if isinstance(pdf, bytes):
        return pdf
    return Path(pdf).read_bytes()


def sign_options(
    *,
    credential_id: str,
    level: str = "B-LT",
    authorization_proof: str = "",
    field_name: str = "",
    reason: str = "",
    location: str = "",
    contact_info: str = "",
    certification: int | None = None,
    stamp: Stamp | None = None,
    registration: pb.RegistrationRequest | None = None,
) -> pb.SignOptions:
    """SignOptions from plain values; ``level`` is ``"B-B"``, ``"B-T"``, ``"B-LT"``, ``"B-LTA"``,
    ``certification`` a DocMDP P value (1 no changes, 2 form filling, 3 annotations)."""
    options = pb.SignOptions(
        credential_id=credential_id,
        authorization_proof=authorization_proof,
        level=_LEVELS[level],
        field_name=field_name,
        reason=reason,
        location=location,
        contact_info=contact_info,
        certification=cast(pb.DocMdpPermission, certification or 0),
    )
    if stamp is not None:
        options.stamp.CopyFrom(stamp.to_proto())
    if registration is not None:
        options.registration.CopyFrom(registration)
    return options


class SigningClient:
    """Client of SigningService. ``token``: the caller's bearer token (forwarded by signing to
    keys as the e-seal proof and to the registry as the issuer's authority)."""

    def __init__(
        self,
        channel: grpc.Channel | str,
        *,
        token: str | None = None,
        deadline: float = 120.0,
    ) -> None:
        self._owns_channel = isinstance(channel, str)
        self._channel = (
            grpc.insecure_channel(
                channel,
                options=[
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ],
            )
            if isinstance(channel, str)
            else channel
        )
        self._stub = signing_pb2_grpc.SigningServiceStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._deadline = deadline

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> SigningClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign_document(self, pdf: bytes | Path | str, **options: Any) -> SignedPdf:
        """Sign one PDF (options as :func:`sign_options`). Raises EgovError."""
        data = _read(pdf)
        opts = options.pop("options", None) or sign_options(**options)

        def requests() -> Iterator[pb.SignDocumentRequest]:
            yield pb.SignDocumentRequest(options=opts)
            for start in range(0, len(data), CHUNK_BYTES):
                yield pb.SignDocumentRequest(chunk=data[start : start + CHUNK_BYTES])

        result: pb.SignResult | None = None
        parts: list[bytes] = []
        try:
            for message in self._stub.SignDocument(
                requests(), timeout=self._deadline, metadata=self._metadata
            ):
                if message.WhichOneof("part") == "result":
                    result = message.result
                else:
                    parts.append(message.chunk)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        if result is None:  # a server that breaks the contract, not a signed document
            raise Internal("RESULT_MISSING", "the signing service sent no result")
        return SignedPdf(b"".join(parts), result)

    def sign_documents(
        self, documents: Sequence[BatchDocument], **options: Any
    ) -> list[pb.BatchResult]:
        """Sign a batch under one authorisation; one BatchResult per document, in order."""
        opts = options.pop("options", None) or sign_options(**options)
        request = pb.SignDocumentsRequest(
            options=opts,
            documents=[
                pb.BatchDocument(
                    client_reference=d.client_reference,
                    pdf=d.pdf,
                    registration=d.registration,
                )
                for d in documents
            ],
        )
        try:
            reply = self._stub.SignDocuments(
                request, timeout=self._deadline, metadata=self._metadata
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return list(reply.results)

    def verify_document(
        self,
        pdf: bytes | Path | str,
        *,
        language: str = "th",
        include_etsi_xml: bool = False,
        validation_time: datetime | None = None,
        skip_registry: bool = False,
    ) -> pb.VerifyDocumentResponse:
        """Validate every signature of ``pdf``: report, summary and (if asked) ETSI XML."""
        data = _read(pdf)
        options = pb.VerifyOptions(
            language=language, include_etsi_xml=include_etsi_xml, skip_registry=skip_registry
        )
        if validation_time is not None:
            options.validation_time.CopyFrom(_timestamp(validation_time))

        def requests() -> Iterator[pb.VerifyDocumentRequest]:
            yield pb.VerifyDocumentRequest(options=options)
            for start in range(0, len(data), CHUNK_BYTES):
                yield pb.VerifyDocumentRequest(chunk=data[start : start + CHUNK_BYTES])

        try:
            response: pb.VerifyDocumentResponse = self._stub.VerifyDocument(
                requests(), timeout=self._deadline, metadata=self._metadata
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return response
