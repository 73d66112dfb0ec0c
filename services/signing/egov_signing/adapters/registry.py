"""The registry over gRPC: reserve an id before signing, register the final digest after, and
look a document up by digest for the validation report."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import grpc
from egov.registry.v1 import registry_pb2 as pb
from egov.signing.v1 import signing_pb2
from egov_clients.registration_rules import epoch_ms
from egov_clients.registry import LogVerificationError, RegistryClient, deciding_entry
from egov_common.deadlines import remaining
from egov_common.errors import DeadlineExceeded, EgovError, FieldViolation, Unavailable

from ..domain.ports import Party, RegistrationSpec, ReservedDocumentId
from ..domain.signing import SIGNING_DEADLINE_EXCEEDED

__all__ = ["GrpcRegistryPort", "RegistryCheckResult", "RegistryLookup", "RegistryStatus"]


def _party(p: Party) -> str:
    return f"{p.namespace}:{p.value}"


#: Seconds per attempt, and attempts, of a reservation or registration (retried with the same
#: idempotency key on UNAVAILABLE and the like).
CALL_SECONDS = 10.0
ATTEMPTS = 6


class GrpcRegistryPort:
    """RegistryPort over the registry client library (retries with the idempotency key).

    Within a call being served, an attempt gets at most half of what is left of that call's
    deadline (so that a failed one leaves room for a retry), and is retried only while a whole
    attempt still fits in it: the registry must not go on registering for a caller who has
    given up."""

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        token: str = "",
        time_left: Callable[[], float | None] = remaining,
    ) -> None:
        self._channel = channel
        self._token = token
        self._time_left = time_left

    def with_token(self, token: str) -> GrpcRegistryPort:
        """The same port acting with the caller's bearer token (the issuer's own authority)."""
        return GrpcRegistryPort(
            self._channel, token=token or self._token, time_left=self._time_left
        )

    def _client(self) -> RegistryClient:
        left = self._time_left()
        if left is None:
            return RegistryClient(
                self._channel,
                token=self._token or None,
                deadline=CALL_SECONDS,
                max_attempts=ATTEMPTS,
            )
        if left <= 0:
            raise DeadlineExceeded(
                SIGNING_DEADLINE_EXCEEDED, "the caller's deadline passed before the registry call"
            )
        per_attempt = min(CALL_SECONDS, left / 2)
        return RegistryClient(
            self._channel,
            token=self._token or None,
            deadline=per_attempt,
            max_attempts=ATTEMPTS,
            sleep=self._sleep_within_deadline(per_attempt),
        )

    def _sleep_within_deadline(self, per_attempt: float) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            left = self._time_left()
            if left is not None and left < seconds + per_attempt:
                # the next attempt would outlive the caller's deadline: the last error stands
                raise _NoTimeForRetry
            time.sleep(seconds)

        return sleep

    def reserve_document_id(self, spec: RegistrationSpec) -> ReservedDocumentId:
        try:
            reply = self._client().reserve_document_id(
                _party(spec.issuer), spec.document_type, spec.idempotency_key
            )
        except EgovError as err:
            raise _registry_error(err, spec) from None
        except _NoTimeForRetry:
            raise _out_of_time() from None
        return ReservedDocumentId(reply.document_id, reply.verification_url)

    def register(
        self,
        spec: RegistrationSpec,
        *,
        document_id: str,
        sha256: bytes,
        signer_certificate_sha256: Sequence[bytes],
    ) -> None:
        try:
            self._register(
                spec,
                document_id=document_id,
                sha256=sha256,
                signer_certificate_sha256=signer_certificate_sha256,
            )
        except EgovError as err:
            raise _registry_error(err, spec) from None
        except _NoTimeForRetry:
            raise _out_of_time() from None

    def _register(
        self,
        spec: RegistrationSpec,
        *,
        document_id: str,
        sha256: bytes,
        signer_certificate_sha256: Sequence[bytes],
    ) -> None:
        self._client().register(
            sha256=sha256,
            issuer=_party(spec.issuer),
            document_type=spec.document_type,
            subject=_party(spec.subject) if spec.subject else "",
            idempotency_key=spec.idempotency_key,
            document_id=document_id,
            signer_certificate_sha256=list(signer_certificate_sha256),
            valid_from_ms=epoch_ms(spec.valid_from) if spec.valid_from else None,
            valid_until_ms=epoch_ms(spec.valid_until) if spec.valid_until else None,
            metadata=dict(spec.metadata),
        )


class _NoTimeForRetry(Exception):
    """A retry would outlive the caller's deadline."""


def _out_of_time() -> Unavailable:
    return Unavailable(
        "REGISTRY_UNAVAILABLE", "the registry did not answer within the caller's deadline"
    )


#: The fields of a registration in a signing request, which the registry's request shares.
_REGISTRATION_FIELDS = frozenset(signing_pb2.RegistrationRequest.DESCRIPTOR.fields_by_name)


def _registry_error(err: EgovError, spec: RegistrationSpec) -> EgovError:
    """The registry's own refusal, its fields named as the signing request has them
    (``idempotency_key`` is ``options.registration.idempotency_key`` to the caller); a
    transport failure as REGISTRY_UNAVAILABLE."""
    if err.reason in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        return Unavailable("REGISTRY_UNAVAILABLE", "the registry cannot be reached")
    if not spec.request_field or not err.field_violations:
        return err
    return type(err)(
        err.reason,
        err.message,
        field_violations=[_request_violation(v, spec.request_field) for v in err.field_violations],
        metadata=err.metadata,
    )


def _request_violation(violation: FieldViolation, request_field: str) -> FieldViolation:
    root = violation.field.partition(".")[0].partition("[")[0]
    if root not in _REGISTRATION_FIELDS:  # sha256, document_id: signing's, not the caller's
        return violation
    return replace(violation, field=f"{request_field}.{violation.field}")


class RegistryStatus(enum.StrEnum):
    REGISTERED = "REGISTERED"
    REVOKED = "REVOKED"
    SUPERSEDED = "SUPERSEDED"
    UNKNOWN = "UNKNOWN"
    NOT_CHECKED = "NOT_CHECKED"


@dataclass(frozen=True)
class RegistryCheckResult:
    status: RegistryStatus
    document: pb.Document | None = None
    inclusion_verified: bool = False
    problem: str = ""


_STATUS = {
    pb.DOCUMENT_STATUS_REGISTERED: RegistryStatus.REGISTERED,
    pb.DOCUMENT_STATUS_REVOKED: RegistryStatus.REVOKED,
    pb.DOCUMENT_STATUS_SUPERSEDED: RegistryStatus.SUPERSEDED,
}


class RegistryLookup:
    """The registry's view of a document by its SHA-256, with the inclusion proof checked.

    One client for the life of the process: the registry's tree-head key (when not pinned) is
    fetched once instead of once per verification, and the client keeps the newest tree head
    it trusted, so later heads are checked against it.
    """

    def __init__(self, channel: grpc.Channel, *, log_key: bytes | None = None) -> None:
        self._client = RegistryClient(channel, log_key=log_key, deadline=5.0, max_attempts=1)

    def check(self, sha256: bytes) -> RegistryCheckResult:
        client = self._client
        try:
            documents = client.lookup_by_hash(sha256)
        except EgovError as err:
            return RegistryCheckResult(RegistryStatus.NOT_CHECKED, problem=err.reason)
        except LogVerificationError as err:  # an answer about another digest
            return RegistryCheckResult(
                RegistryStatus.NOT_CHECKED, problem=f"registry answer refused: {err}"
            )
        except Exception as err:
            return RegistryCheckResult(RegistryStatus.NOT_CHECKED, problem=type(err).__name__)
        if not documents:
            return RegistryCheckResult(RegistryStatus.UNKNOWN)
        document = deciding_entry(documents)
        status = _STATUS.get(document.status, RegistryStatus.UNKNOWN)
        try:
            client.verify_document(document)
            return RegistryCheckResult(status, document, inclusion_verified=True)
        except Exception as err:
            return RegistryCheckResult(
                status,
                document,
                inclusion_verified=False,
                problem=f"inclusion proof not verified: {type(err).__name__}",
            )
