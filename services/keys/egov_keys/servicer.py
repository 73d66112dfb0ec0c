"""egov.keys.v1.KeysService: proto -> application call -> proto. No business logic here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import grpc
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_common.auth import current_caller
from egov_common.errors import FieldViolation, InvalidArgument
from egov_common.logging import mask_identifier
from egov_pki.identifiers import Identifier, juristic_number, national_id, parse_identifier
from google.protobuf.timestamp_pb2 import Timestamp

from egov_keys.credentials import CredentialService, OwnerNames
from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm, SignatureScheme
from egov_keys.domain.custody import CustodyBackend
from egov_keys.domain.model import AuditRecord, Credential, CredentialStatus, RevocationReason
from egov_keys.domain.pki import CaRole, OwnerKind
from egov_keys.trust import ISSUING_CAS, OCSP_SCOPES, TrustServices

__all__ = ["SERVICE_NAME", "KeysServicer"]

SERVICE_NAME = keys_pb2.DESCRIPTOR.services_by_name["KeysService"].full_name

_KIND = {
    keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON: OwnerKind.NATURAL_PERSON,
    keys_pb2.CREDENTIAL_KIND_LEGAL_PERSON: OwnerKind.LEGAL_PERSON,
    keys_pb2.CREDENTIAL_KIND_ELECTRONIC_SEAL: OwnerKind.ELECTRONIC_SEAL,
}
_KIND_OUT = {v: k for k, v in _KIND.items()}
_KEY_ALG = {
    crypto_pb2.KEY_ALGORITHM_ECDSA_P256: KeyAlgorithm.ECDSA_P256,
    crypto_pb2.KEY_ALGORITHM_ECDSA_P384: KeyAlgorithm.ECDSA_P384,
    crypto_pb2.KEY_ALGORITHM_RSA_3072: KeyAlgorithm.RSA_3072,
}
_KEY_ALG_OUT = {v: k for k, v in _KEY_ALG.items()}
_HASH = {
    crypto_pb2.HASH_ALGORITHM_SHA256: HashAlgorithm.SHA256,
    crypto_pb2.HASH_ALGORITHM_SHA384: HashAlgorithm.SHA384,
    crypto_pb2.HASH_ALGORITHM_SHA512: HashAlgorithm.SHA512,
}
_SCHEME = {
    crypto_pb2.SIGNATURE_ALGORITHM_ECDSA: SignatureScheme.ECDSA,
    crypto_pb2.SIGNATURE_ALGORITHM_RSA_PKCS1V15: SignatureScheme.RSA_PKCS1V15,
    crypto_pb2.SIGNATURE_ALGORITHM_RSA_PSS: SignatureScheme.RSA_PSS,
}
_BACKEND = {
    keys_pb2.KEY_BACKEND_SOFTWARE: CustodyBackend.SOFTWARE,
    keys_pb2.KEY_BACKEND_PKCS11: CustodyBackend.PKCS11,
}
_BACKEND_OUT = {v: k for k, v in _BACKEND.items()}
_STATUS_OUT = {
    "active": keys_pb2.CREDENTIAL_STATUS_ACTIVE,
    "revoked": keys_pb2.CREDENTIAL_STATUS_REVOKED,
    "renewed": keys_pb2.CREDENTIAL_STATUS_RENEWED,
    "expired": keys_pb2.CREDENTIAL_STATUS_EXPIRED,
}
_STATUS_IN = {
    keys_pb2.CREDENTIAL_STATUS_ACTIVE: CredentialStatus.ACTIVE,
    keys_pb2.CREDENTIAL_STATUS_REVOKED: CredentialStatus.REVOKED,
    keys_pb2.CREDENTIAL_STATUS_RENEWED: CredentialStatus.RENEWED,
}
_REASON = {
    keys_pb2.CERTIFICATE_REVOCATION_REASON_KEY_COMPROMISE: RevocationReason.KEY_COMPROMISE,
    keys_pb2.CERTIFICATE_REVOCATION_REASON_AFFILIATION_CHANGED: (
        RevocationReason.AFFILIATION_CHANGED
    ),
    keys_pb2.CERTIFICATE_REVOCATION_REASON_SUPERSEDED: RevocationReason.SUPERSEDED,
    keys_pb2.CERTIFICATE_REVOCATION_REASON_CESSATION_OF_OPERATION: (
        RevocationReason.CESSATION_OF_OPERATION
    ),
    keys_pb2.CERTIFICATE_REVOCATION_REASON_PRIVILEGE_WITHDRAWN: (
        RevocationReason.PRIVILEGE_WITHDRAWN
    ),
}
_REASON_OUT = {v: k for k, v in _REASON.items()}


def _timestamp(when: dt.datetime | None) -> Timestamp | None:
    if when is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


def _enum(
    table: Mapping[Any, Any], value: int, field: str, *, required: bool, default: Any = None
) -> Any:
    if value == 0 and not required:
        return default
    found = table.get(value)
    if found is None:
        raise InvalidArgument(
            f"{field.upper()}_UNSUPPORTED" if value else f"{field.upper()}_MISSING",
            f"{field} is {'not supported' if value else 'required'}",
            field_violations=(FieldViolation(field, "unsupported" if value else "required"),),
        )
    return found


def _owner(owner: party_pb2.PartyIdentifier, field: str = "owner") -> Identifier:
    try:
        if owner.namespace == party_pb2.IDENTIFIER_NAMESPACE_TH_PID:
            return national_id(owner.value, field=f"{field}.value")
        if owner.namespace == party_pb2.IDENTIFIER_NAMESPACE_TH_JUR:
            return juristic_number(owner.value, field=f"{field}.value")
        if owner.namespace == party_pb2.IDENTIFIER_NAMESPACE_PASSPORT:
            return parse_identifier(f"PASSPORT:{owner.value}", field=f"{field}.value")
    except InvalidArgument as exc:
        raise InvalidArgument(
            "OWNER_INVALID",
            exc.message,
            field_violations=exc.field_violations,
            metadata={"detail": exc.reason},
        ) from None
    raise InvalidArgument(
        "OWNER_INVALID",
        "owner needs a namespace",
        field_violations=(FieldViolation(f"{field}.namespace", "required"),),
    )


def _owner_out(owner: Identifier, *, masked: bool = False) -> party_pb2.PartyIdentifier:
    namespace = {
        "TH-PID": party_pb2.IDENTIFIER_NAMESPACE_TH_PID,
        "TH-JUR": party_pb2.IDENTIFIER_NAMESPACE_TH_JUR,
        "PASSPORT": party_pb2.IDENTIFIER_NAMESPACE_PASSPORT,
    }[owner.namespace.value]
    value = mask_identifier(owner.value) if masked else owner.value
    return party_pb2.PartyIdentifier(namespace=namespace, value=value)


class KeysServicer(keys_pb2_grpc.KeysServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(self, credentials: CredentialService, trust: TrustServices) -> None:
        self._credentials = credentials
        self._trust = trust

    def _credential_out(
        self, credential: Credential, *, complete: bool = True
    ) -> keys_pb2.Credential:
        """``complete`` False (CredentialView): the owner masked, no certificate chain."""
        return keys_pb2.Credential(
            credential_id=credential.credential_id,
            owner=_owner_out(credential.owner, masked=not complete),
            kind=_KIND_OUT[credential.kind],
            key_algorithm=_KEY_ALG_OUT[credential.key.algorithm],
            key_backend=_BACKEND_OUT[credential.key.backend],
            status=_STATUS_OUT[self._credentials.effective_status(credential)],
            certificate_chain=self._credentials.chain(credential) if complete else [],
            not_before=_timestamp(credential.not_before),
            not_after=_timestamp(credential.not_after),
            max_signatures_per_authorization=credential.max_signatures,
            renewed_from=credential.renewed_from,
            renewed_by=credential.renewed_by,
            revocation_reason=_REASON_OUT.get(credential.revocation_reason)
            if credential.revocation_reason
            else None,
            revoked_at=_timestamp(credential.revoked_at),
            certificate_serial=f"{credential.certificate_serial:x}",
        )

    def CreateCredential(
        self, request: keys_pb2.CreateCredentialRequest, context: grpc.ServicerContext
    ) -> keys_pb2.CreateCredentialResponse:
        kind = _enum(_KIND, request.kind, "kind", required=True)
        owner = _owner(request.owner)
        algorithm = _enum(
            _KEY_ALG,
            request.key_algorithm,
            "key_algorithm",
            required=False,
            default=KeyAlgorithm.ECDSA_P256,
        )
        backend = _enum(_BACKEND, request.key_backend, "key_backend", required=False)
        n = request.names
        names = OwnerNames(
            n.given_name_th,
            n.family_name_th,
            n.given_name_en,
            n.family_name_en,
            n.organization_name_th,
            n.organization_name_en,
        )
        credential = self._credentials.create(
            current_caller(),
            idempotency_key=request.idempotency_key,
            owner=owner,
            kind=kind,
            algorithm=algorithm,
            names=names,
            proof_token=request.authorization_proof,
            backend=backend,
        )
        return keys_pb2.CreateCredentialResponse(credential=self._credential_out(credential))

    def ListCredentials(
        self, request: keys_pb2.ListCredentialsRequest, context: grpc.ServicerContext
    ) -> keys_pb2.ListCredentialsResponse:
        owner = _owner(request.owner)
        status = _enum(_STATUS_IN, request.status, "status", required=False)
        page, token = self._credentials.list_credentials(
            current_caller(),
            owner=owner,
            proof_token=request.authorization_proof,
            status=status,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return keys_pb2.ListCredentialsResponse(
            credentials=[self._credential_out(c) for c in page], next_page_token=token
        )

    def GetCredential(
        self, request: keys_pb2.GetCredentialRequest, context: grpc.ServicerContext
    ) -> keys_pb2.GetCredentialResponse:
        view = self._credentials.view(current_caller(), request.credential_id)
        return keys_pb2.GetCredentialResponse(
            credential=self._credential_out(view.credential, complete=view.complete)
        )

    def RevokeCredential(
        self, request: keys_pb2.RevokeCredentialRequest, context: grpc.ServicerContext
    ) -> keys_pb2.RevokeCredentialResponse:
        reason = _enum(_REASON, request.reason, "reason", required=True)
        credential = self._credentials.revoke(
            current_caller(), request.credential_id, reason, request.authorization_proof
        )
        return keys_pb2.RevokeCredentialResponse(credential=self._credential_out(credential))

    def RenewCredential(
        self, request: keys_pb2.RenewCredentialRequest, context: grpc.ServicerContext
    ) -> keys_pb2.RenewCredentialResponse:
        algorithm = _enum(_KEY_ALG, request.key_algorithm, "key_algorithm", required=False)
        new, old = self._credentials.renew(
            current_caller(),
            idempotency_key=request.idempotency_key,
            credential_id=request.credential_id,
            algorithm=algorithm,
            proof_token=request.authorization_proof,
        )
        return keys_pb2.RenewCredentialResponse(
            credential=self._credential_out(new), previous=self._credential_out(old)
        )

    def Authorize(
        self, request: keys_pb2.AuthorizeRequest, context: grpc.ServicerContext
    ) -> keys_pb2.AuthorizeResponse:
        hash_algorithm = _enum(_HASH, request.hash_algorithm, "hash_algorithm", required=True)
        issued = self._credentials.authorize(
            current_caller(),
            credential_id=request.credential_id,
            hashes=list(request.hashes),
            hash_algorithm=hash_algorithm,
            num_signatures=request.num_signatures,
            proof_token=request.authorization_proof,
            description=request.description,
        )
        return keys_pb2.AuthorizeResponse(sad=issued.sad, expires_at=_timestamp(issued.expires_at))

    def SignHash(
        self, request: keys_pb2.SignHashRequest, context: grpc.ServicerContext
    ) -> keys_pb2.SignHashResponse:
        hash_algorithm = _enum(_HASH, request.hash_algorithm, "hash_algorithm", required=True)
        scheme = _enum(_SCHEME, request.signature_algorithm, "signature_algorithm", required=False)
        signatures = self._credentials.sign_hash(
            current_caller(),
            credential_id=request.credential_id,
            sad=request.sad,
            hashes=list(request.hashes),
            hash_algorithm=hash_algorithm,
            scheme=scheme,
        )
        return keys_pb2.SignHashResponse(signatures=signatures)

    def GetTrustServiceInfo(
        self, request: keys_pb2.GetTrustServiceInfoRequest, context: grpc.ServicerContext
    ) -> keys_pb2.GetTrustServiceInfoResponse:
        urls = self._trust.urls
        out = []
        for role in (CaRole.ROOT, *ISSUING_CAS):
            out.append(
                keys_pb2.CaCertificate(
                    role=role.value,
                    certificate_der=self._trust.certificate_der(role.value),
                    crl_url=urls.crl(role.value),
                    certificate_url=urls.ca_certificate(role.value),
                )
            )
        out.append(
            keys_pb2.CaCertificate(
                role="tsa",
                certificate_der=self._trust.certificate_der("tsa"),
                certificate_url=urls.ca_certificate("tsa"),
            )
        )
        for role in OCSP_SCOPES:
            name = f"ocsp-{role.value}"
            out.append(
                keys_pb2.CaCertificate(
                    role="ocsp",
                    certificate_der=self._trust.certificate_der(name),
                    certificate_url=urls.ca_certificate(name),
                )
            )
        return keys_pb2.GetTrustServiceInfoResponse(
            certificates=out,
            ocsp_url=urls.ocsp,
            tsa_url=urls.tsa,
            tsa_policy_oid=self._trust.tsa_policy_oid,
        )

    def ListAuditEvents(
        self, request: keys_pb2.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> keys_pb2.ListAuditEventsResponse:
        page, token = self._credentials.audit_events(
            current_caller(),
            credential_id=request.credential_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return keys_pb2.ListAuditEventsResponse(
            events=[_audit_out(r) for r in page], next_page_token=token
        )

    def VerifyAuditLog(
        self, request: keys_pb2.VerifyAuditLogRequest, context: grpc.ServicerContext
    ) -> keys_pb2.VerifyAuditLogResponse:
        verdict = self._credentials.verify_audit(current_caller())
        return keys_pb2.VerifyAuditLogResponse(
            intact=verdict.intact,
            entries_checked=verdict.entries_checked,
            first_bad_sequence=verdict.first_bad_sequence,
            problem=verdict.problem,
        )


def _audit_out(record: AuditRecord) -> keys_pb2.AuditEvent:
    return keys_pb2.AuditEvent(
        sequence=record.sequence,
        occurred_at=_timestamp(record.occurred_at),
        action=record.action,
        actor=record.actor,
        credential_id=record.credential_id,
        outcome=record.outcome,
        details_json=record.details_json,
        entry_hash=record.entry_hash,
        previous_hash=record.previous_hash,
    )
