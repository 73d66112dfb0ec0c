"""gRPC servicers of egov.identity.v1: proto -> domain call -> proto; no business logic.

Errors are ``EgovError`` from the domain; egov_common's interceptor turns them into
``google.rpc.Status``. Admin RPCs check the caller's scopes (``identity:admin``,
``identity:proofing``) from ``egov_common.auth.current_caller()``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc
from egov.identity.v1 import (
    authentication_pb2 as auth_pb,
)
from egov.identity.v1 import (
    authentication_pb2_grpc as auth_grpc,
)
from egov.identity.v1 import (
    clients_pb2 as clients_pb,
)
from egov.identity.v1 import (
    clients_pb2_grpc as clients_grpc,
)
from egov.identity.v1 import (
    oidc_pb2 as oidc_pb,
)
from egov.identity.v1 import (
    oidc_pb2_grpc as oidc_grpc,
)
from egov.identity.v1 import (
    proofing_pb2 as proofing_pb,
)
from egov.identity.v1 import (
    proofing_pb2_grpc as proofing_grpc,
)
from egov.identity.v1 import (
    representation_pb2 as rep_pb,
)
from egov.identity.v1 import (
    representation_pb2_grpc as rep_grpc,
)
from egov.type.v1 import party_pb2
from egov_common.auth import current_caller
from egov_common.clock import request_time
from egov_common.errors import FieldViolation, InvalidArgument, PermissionDenied
from egov_common.server import GrpcService
from egov_pki.identifiers import Identifier, Namespace, parse_identifier
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from egov_identity.domain import model as m
from egov_identity.domain.proofing import (
    Evidence,
    EvidenceKind,
    EvidenceOutcome,
    IdCardChipEvidence,
    IdpKycEvidence,
    InPersonEvidence,
    PassportEvidence,
    PersonAttributes,
    ProofingState,
)
from egov_identity.domain.service import IdentityService

_NS_TO_PROTO = {
    Namespace.TH_PID: party_pb2.IDENTIFIER_NAMESPACE_TH_PID,
    Namespace.TH_JUR: party_pb2.IDENTIFIER_NAMESPACE_TH_JUR,
    Namespace.PASSPORT: party_pb2.IDENTIFIER_NAMESPACE_PASSPORT,
}
_NS_FROM_PROTO = {v: k for k, v in _NS_TO_PROTO.items()}
_STATE = {
    ProofingState.OPEN: proofing_pb.PROOFING_STATE_OPEN,
    ProofingState.COMPLETED: proofing_pb.PROOFING_STATE_COMPLETED,
    ProofingState.FAILED: proofing_pb.PROOFING_STATE_FAILED,
    ProofingState.EXPIRED: proofing_pb.PROOFING_STATE_EXPIRED,
}
_KIND = {
    EvidenceKind.ID_CARD_CHIP: proofing_pb.EVIDENCE_KIND_ID_CARD_CHIP,
    EvidenceKind.PASSPORT: proofing_pb.EVIDENCE_KIND_PASSPORT,
    EvidenceKind.IDP_KYC: proofing_pb.EVIDENCE_KIND_IDP_KYC,
    EvidenceKind.IN_PERSON: proofing_pb.EVIDENCE_KIND_IN_PERSON,
}
_OUTCOME = {
    EvidenceOutcome.VERIFIED: proofing_pb.EVIDENCE_OUTCOME_VERIFIED,
    EvidenceOutcome.REJECTED: proofing_pb.EVIDENCE_OUTCOME_REJECTED,
    EvidenceOutcome.MISMATCH: proofing_pb.EVIDENCE_OUTCOME_MISMATCH,
}
_REP_STATUS = {
    m.RepresentationStatus.ACTIVE: rep_pb.REPRESENTATION_STATUS_ACTIVE,
    m.RepresentationStatus.REVOKED: rep_pb.REPRESENTATION_STATUS_REVOKED,
    m.RepresentationStatus.EXPIRED: rep_pb.REPRESENTATION_STATUS_EXPIRED,
}
_JUR_KIND = {
    m.JuristicKind.COMPANY: rep_pb.JURISTIC_PERSON_KIND_COMPANY,
    m.JuristicKind.AGENCY: rep_pb.JURISTIC_PERSON_KIND_AGENCY,
}
_SUBJECT_TYPE = {
    m.SubjectType.PUBLIC: clients_pb.SUBJECT_TYPE_PUBLIC,
    m.SubjectType.PAIRWISE: clients_pb.SUBJECT_TYPE_PAIRWISE,
}


def _ts(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _seconds(ts: Timestamp, field: str) -> float:
    """A time from a request; INVALID_ARGUMENT (VALIDITY_INVALID) naming ``field`` when it is
    outside what a Timestamp may hold."""
    return request_time(ts, field=field, reason="VALIDITY_INVALID").timestamp()


def identifier_from_proto(party: party_pb2.PartyIdentifier, field: str) -> Identifier:
    namespace = _NS_FROM_PROTO.get(party.namespace)
    if namespace is None:
        raise InvalidArgument("IDENTIFIER_INVALID", "identifier namespace is required",
                              field_violations=(FieldViolation(f"{field}.namespace",
                                                               "required"),))
    return parse_identifier(f"{namespace.value}:{party.value}", field=field)


def identifier_to_proto(text: str) -> party_pb2.PartyIdentifier:
    ident = parse_identifier(text)
    return party_pb2.PartyIdentifier(namespace=_NS_TO_PROTO[ident.namespace], value=ident.value)


def _require_scope(*scopes: str) -> None:
    caller = current_caller()
    if any(caller.has_scope(s) for s in scopes):
        return
    raise PermissionDenied("SCOPE_MISSING", f"needs scope {' or '.join(scopes)}",
                           metadata={"required_scope": scopes[0]})


def _caller_client_id() -> str | None:
    """The OAuth client whose access token authenticated the call (a client's own token or
    a person's token issued to it); None for an anonymous or service caller."""
    client_id = current_caller().claims.get("client_id")
    return client_id if isinstance(client_id, str) and client_id else None


def _attributes(p: proofing_pb.PersonAttributes) -> PersonAttributes:
    n = p.names
    return PersonAttributes(n.given_name_th, n.family_name_th, n.given_name_en,
                            n.family_name_en, p.birth_date)


def evidence_from_proto(e: proofing_pb.Evidence) -> Evidence:
    which = e.WhichOneof("kind")
    if which == "id_card_chip":
        c = e.id_card_chip
        return IdCardChipEvidence(c.national_id, _attributes(c.attributes), c.laser_code,
                                  c.expiry_date)
    if which == "passport":
        p = e.passport
        return PassportEvidence(p.document_number, p.issuing_country, _attributes(p.attributes),
                                p.expiry_date, p.chip_verified)
    if which == "idp_kyc":
        return IdpKycEvidence(e.idp_kyc.provider, e.idp_kyc.assertion)
    if which == "in_person":
        i = e.in_person
        return InPersonEvidence(i.officer_id, i.location, _attributes(i.attributes),
                                i.photo_match)
    raise InvalidArgument("EVIDENCE_MISSING", "one kind of evidence is required",
                          field_violations=(FieldViolation("evidence", "required"),))


def session_to_proto(s: m.ProofingSession) -> proofing_pb.ProofingSession:
    return proofing_pb.ProofingSession(
        session_id=s.session_id, subject=identifier_to_proto(s.subject),
        target_ial=s.target_ial, state=_STATE[s.state],
        evidence=[proofing_pb.EvidenceResult(kind=_KIND[r.kind], outcome=_OUTCOME[r.outcome],
                                             reason=r.reason, source=r.source,
                                             verified_at=_ts(r.verified_at))
                  for r in s.evidence],
        achieved_ial=s.achieved_ial, failure_reason=s.failure_reason,
        created_at=_ts(s.created_at), expires_at=_ts(s.expires_at), person_id=s.person_id)


class ProofingServicer(proofing_grpc.ProofingServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(self, service: IdentityService) -> None:
        self._s = service

    def StartProofing(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:proofing")
        subject = identifier_from_proto(request.subject, "subject")
        session = self._s.start_proofing(subject, request.target_ial)
        return proofing_pb.StartProofingResponse(session=session_to_proto(session))

    def SubmitEvidence(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:proofing")
        session = self._s.submit_evidence(request.session_id,
                                          evidence_from_proto(request.evidence))
        return proofing_pb.SubmitEvidenceResponse(session=session_to_proto(session))

    def CompleteProofing(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:proofing")
        session = self._s.complete_proofing(request.session_id)
        return proofing_pb.CompleteProofingResponse(session=session_to_proto(session),
                                                    enrolment_code=session.enrolment_code)

    def GetProofing(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:proofing")
        return proofing_pb.GetProofingResponse(
            session=session_to_proto(self._s.get_proofing(request.session_id)))


class AuthenticationServicer(auth_grpc.AuthenticationServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(self, service: IdentityService) -> None:
        self._s = service

    def SetPassword(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = self._s.set_password(request.person_id, request.new_password,
                                    enrolment_code=request.enrolment_code,
                                    login_session_id=request.login_session_id,
                                    username=request.username)
        return auth_pb.SetPasswordResponse(username=name)

    def EnrolTotp(self, request: Any, context: grpc.ServicerContext) -> Any:
        return auth_pb.EnrolTotpResponse(otpauth_uri=self._s.enrol_totp(request.login_session_id))

    def ConfirmTotp(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._s.confirm_totp(request.login_session_id, request.code)
        return auth_pb.ConfirmTotpResponse()

    def RegisterDevice(self, request: Any, context: grpc.ServicerContext) -> Any:
        device_id = self._s.register_device(request.login_session_id, request.public_key_der,
                                            request.display_name)
        return auth_pb.RegisterDeviceResponse(device_id=device_id)

    def Login(self, request: Any, context: grpc.ServicerContext) -> Any:
        session = self._s.login(request.client_id, request.username, request.password,
                                request.totp_code)
        return auth_pb.LoginResponse(login_session_id=session.login_session_id,
                                     aal=str(session.aal), amr=list(session.amr),
                                     expires_at=_ts(session.expires_at))

    def BackchannelAuthenticate(self, request: Any, context: grpc.ServicerContext) -> Any:
        start = self._s.backchannel_authenticate(
            request.client_id, request.client_assertion, request.login_hint,
            request.binding_message, request.scope, request.acr_values)
        return auth_pb.BackchannelAuthenticateResponse(
            auth_req_id=start.auth_req_id, expires_in=start.expires_in, interval=start.interval)

    def ListPendingApprovals(self, request: Any, context: grpc.ServicerContext) -> Any:
        pending = self._s.list_pending_approvals(request.device_id, request.device_proof)
        return auth_pb.ListPendingApprovalsResponse(approvals=[
            auth_pb.PendingApproval(auth_req_id=p.auth_req_id, client_name=p.client_name,
                                    binding_message=p.binding_message,
                                    expires_at=_ts(p.expires_at)) for p in pending])

    def DecideApproval(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._s.decide_approval(request.device_id, request.auth_req_id, request.approve,
                                request.device_proof)
        return auth_pb.DecideApprovalResponse()


class OidcServicer(oidc_grpc.OidcServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(self, service: IdentityService) -> None:
        self._s = service

    def Authorize(self, request: Any, context: grpc.ServicerContext) -> Any:
        result = self._s.authorize(
            login_session_id=request.login_session_id, client_id=request.client_id,
            redirect_uri=request.redirect_uri, scope=request.scope, state=request.state,
            nonce=request.nonce, code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            acr_values=request.acr_values, claims=request.claims)
        return oidc_pb.AuthorizeResponse(code=result.code, redirect_to=result.redirect_to)

    def Token(self, request: Any, context: grpc.ServicerContext) -> Any:
        tokens = self._s.token(m.TokenRequest(
            grant_type=request.grant_type, client_id=request.client_id,
            client_assertion=request.client_assertion,
            client_assertion_type=request.client_assertion_type, code=request.code,
            redirect_uri=request.redirect_uri, code_verifier=request.code_verifier,
            refresh_token=request.refresh_token, scope=request.scope,
            auth_req_id=request.auth_req_id, subject_token=request.subject_token,
            subject_token_type=request.subject_token_type, act_for=request.act_for,
            audience=request.audience))
        return oidc_pb.TokenResponse(
            access_token=tokens.access_token, token_type=tokens.token_type,
            expires_in=tokens.expires_in, refresh_token=tokens.refresh_token,
            id_token=tokens.id_token, scope=tokens.scope,
            issued_token_type=tokens.issued_token_type)

    def RevokeToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        client = self._s.authenticate_client(request.client_id, request.client_assertion)
        self._s.revoke(client, request.token)
        return oidc_pb.RevokeTokenResponse()

    def IntrospectToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        client = self._s.authenticate_client(request.client_id, request.client_assertion)
        if client.auth_method == "none":
            raise PermissionDenied("INVALID_CLIENT", "introspection needs client authentication")
        result = self._s.introspect(client, request.token)
        return oidc_pb.IntrospectTokenResponse(active=bool(result.get("active")),
                                               claims_json=json.dumps(result))

    def GetUserInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        return oidc_pb.GetUserInfoResponse(
            claims_json=json.dumps(self._s.userinfo(request.access_token), ensure_ascii=False))

    def GetJwks(self, request: Any, context: grpc.ServicerContext) -> Any:
        return oidc_pb.GetJwksResponse(jwks_json=json.dumps(self._s.keyring.jwks()))


_E = TypeVar("_E")


def _from_enum(mapping: Mapping[_E, int], number: int, default: _E, field: str) -> _E:
    """The domain value of enum ``number`` (``default`` when unset); INVALID_ARGUMENT
    (ENUM_VALUE_UNKNOWN) for a number the contract does not define: a typo must not become the
    default (a PAIRWISE client silently PUBLIC would show every client the same subject)."""
    if number == 0:
        return default
    for value, known in mapping.items():
        if known == number:
            return value
    raise InvalidArgument("ENUM_VALUE_UNKNOWN", f"{field} has no value {number}",
                          field_violations=(FieldViolation(field, "unknown value"),))


def client_from_proto(c: clients_pb.Client) -> m.Client:
    agency = ""
    if c.HasField("agency") and c.agency.value:
        agency = str(identifier_from_proto(c.agency, "client.agency"))
    subject_type = _from_enum(_SUBJECT_TYPE, c.subject_type, m.SubjectType.PUBLIC,
                              "client.subject_type")
    return m.Client(
        client_id=c.client_id, client_name=c.client_name, redirect_uris=tuple(c.redirect_uris),
        grant_types=tuple(c.grant_types), scopes=tuple(c.scopes),
        auth_method=c.token_endpoint_auth_method or "none", jwks_json=c.jwks_json,
        subject_type=subject_type, sector_identifier=c.sector_identifier, agency=agency,
        id_token_signed_response_alg=c.id_token_signed_response_alg or "ES256")


def client_to_proto(c: m.Client) -> clients_pb.Client:
    out = clients_pb.Client(
        client_id=c.client_id, client_name=c.client_name, redirect_uris=list(c.redirect_uris),
        grant_types=list(c.grant_types), scopes=list(c.scopes),
        token_endpoint_auth_method=c.auth_method, jwks_json=c.jwks_json,
        subject_type=_SUBJECT_TYPE[c.subject_type], sector_identifier=c.sector_identifier,
        id_token_signed_response_alg=c.id_token_signed_response_alg)
    if c.agency:
        out.agency.CopyFrom(identifier_to_proto(c.agency))
    return out


class ClientServicer(clients_grpc.ClientServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(self, service: IdentityService) -> None:
        self._s = service

    def RegisterClient(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:admin")
        client = self._s.register_client(client_from_proto(request.client))
        return clients_pb.RegisterClientResponse(client=client_to_proto(client))

    def GetClient(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:admin")
        return clients_pb.GetClientResponse(
            client=client_to_proto(self._s.get_client(request.client_id)))


def representation_to_proto(r: m.Representation) -> rep_pb.Representation:
    return rep_pb.Representation(
        representation_id=r.representation_id,
        juristic_person=identifier_to_proto(r.juristic_person),
        representative=identifier_to_proto(r.representative), role=r.role,
        powers=list(r.powers), valid_from=_ts(r.valid_from), valid_until=_ts(r.valid_until),
        granted_by=identifier_to_proto(r.granted_by), evidence=r.evidence,
        status=_REP_STATUS[r.status])


def juristic_to_proto(j: m.JuristicPerson) -> rep_pb.JuristicPerson:
    return rep_pb.JuristicPerson(
        identifier=identifier_to_proto(j.identifier), kind=_JUR_KIND[j.kind],
        names=party_pb2.PartyNames(organization_name_th=j.name_th,
                                   organization_name_en=j.name_en),
        directors=[identifier_to_proto(d) for d in j.directors],
        registered_at=_ts(j.registered_at))


class RepresentationServicer(rep_grpc.RepresentationServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(self, service: IdentityService) -> None:
        self._s = service

    def RegisterJuristicPerson(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:admin")
        kind = _from_enum(_JUR_KIND, request.kind, m.JuristicKind.COMPANY, "kind")
        person = self._s.register_juristic_person(
            identifier_from_proto(request.identifier, "identifier"), kind,
            request.names.organization_name_th, request.names.organization_name_en,
            [identifier_from_proto(d, f"directors[{i}]")
             for i, d in enumerate(request.directors)])
        return rep_pb.RegisterJuristicPersonResponse(juristic_person=juristic_to_proto(person))

    def GetJuristicPerson(self, request: Any, context: grpc.ServicerContext) -> Any:
        # the directors' national ids are personal data, as much as ListRepresentations' are
        _require_scope("identity:admin", "identity:representation")
        ident = identifier_from_proto(request.identifier, "identifier")
        return rep_pb.GetJuristicPersonResponse(
            juristic_person=juristic_to_proto(self._s.juristic_person(str(ident))))

    def GrantRepresentation(self, request: Any, context: grpc.ServicerContext) -> Any:
        rep = self._s.grant_representation(
            juristic_person=identifier_from_proto(request.juristic_person, "juristic_person"),
            representative=identifier_from_proto(request.representative, "representative"),
            role=request.role, powers=list(request.powers),
            valid_from=(_seconds(request.valid_from, "valid_from")
                        if request.HasField("valid_from") else None),
            valid_until=(_seconds(request.valid_until, "valid_until")
                         if request.HasField("valid_until") else 0),
            grantor_id_token=request.grantor_id_token, caller_client_id=_caller_client_id())
        return rep_pb.GrantRepresentationResponse(representation=representation_to_proto(rep))

    def RevokeRepresentation(self, request: Any, context: grpc.ServicerContext) -> Any:
        rep = self._s.revoke_representation(request.representation_id, request.revoker_id_token,
                                            _caller_client_id())
        return rep_pb.RevokeRepresentationResponse(representation=representation_to_proto(rep))

    def ListRepresentations(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_scope("identity:admin", "identity:representation")
        jur = (str(identifier_from_proto(request.juristic_person, "juristic_person"))
               if request.HasField("juristic_person") and request.juristic_person.value else "")
        rep = (str(identifier_from_proto(request.representative, "representative"))
               if request.HasField("representative") and request.representative.value else "")
        page, token = self._s.list_representations(
            juristic_person=jur, representative=rep, page_size=request.page_size,
            page_token=request.page_token)
        return rep_pb.ListRepresentationsResponse(
            representations=[representation_to_proto(r) for r in page],
            next_page_token=token)


def refuse_nul_characters(message: Message, prefix: str = "") -> None:
    """Raise ``InvalidArgument(TEXT_INVALID)`` naming the first string field of ``message``
    (nested messages included) that holds a NUL character: no PostgreSQL text column stores
    one (the request would fail as INTERNAL there, and be stored as sent on SQLite)."""
    for field, value in message.ListFields():
        items = list(value) if field.is_repeated else [value]
        for i, item in enumerate(items):
            name = f"{prefix}{field.name}[{i}]" if field.is_repeated else prefix + field.name
            if field.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                raise InvalidArgument("TEXT_INVALID", f"{name} holds a NUL character",
                                      field_violations=(FieldViolation(name, "no NUL"),))
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                refuse_nul_characters(item, name + ".")


class _TextChecked:
    """``servicer`` whose methods first pass the request to :func:`refuse_nul_characters`
    (every identity RPC is unary), so that no method has to remember to."""

    def __init__(self, servicer: Any) -> None:
        self._servicer = servicer

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._servicer, name)

        def checked(request: Message, context: grpc.ServicerContext) -> Any:
            refuse_nul_characters(request)
            return method(request, context)

        return checked


def grpc_services(service: IdentityService) -> list[GrpcService]:
    """Every identity gRPC service, ready for ``egov_common.server.serve``."""
    def full_name(module: Any, name: str) -> str:
        return str(module.DESCRIPTOR.services_by_name[name].full_name)

    def register(add: Any, servicer: Any) -> Callable[[grpc.Server], None]:
        # The generated add_*_to_server functions are untyped; typed here once.
        return lambda server: add(_TextChecked(servicer), server)

    return [
        GrpcService(full_name(proofing_pb, "ProofingService"),
                    register(proofing_grpc.add_ProofingServiceServicer_to_server,
                             ProofingServicer(service))),
        GrpcService(full_name(auth_pb, "AuthenticationService"),
                    register(auth_grpc.add_AuthenticationServiceServicer_to_server,
                             AuthenticationServicer(service))),
        GrpcService(full_name(oidc_pb, "OidcService"),
                    register(oidc_grpc.add_OidcServiceServicer_to_server, OidcServicer(service))),
        GrpcService(full_name(clients_pb, "ClientService"),
                    register(clients_grpc.add_ClientServiceServicer_to_server,
                             ClientServicer(service))),
        GrpcService(full_name(rep_pb, "RepresentationService"),
                    register(rep_grpc.add_RepresentationServiceServicer_to_server,
                             RepresentationServicer(service))),
    ]
