"""Domain values of the identity service (frozen dataclasses passed between layers)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from egov_identity.domain.proofing import EvidenceResult, PersonAttributes, ProofingState

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name, not a secret
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_CIBA = "urn:openid:params:grant-type:ciba"
GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
GRANT_TYPES = frozenset({GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS,
                         GRANT_CIBA, GRANT_TOKEN_EXCHANGE})
TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
TOKEN_TYPE_ID = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Scopes about the person; anything else must look like ``<service>:<permission>``.
PERSON_SCOPES = frozenset({"openid", "profile", "identifier", "verified_claims",
                           "offline_access"})
#: Resource scope prefixes and the audience their tokens carry (``keys:sign`` -> urn:egov:keys).
RESOURCE_AUDIENCES = {
    "identity": "urn:egov:identity",
    "keys": "urn:egov:keys",
    "registry": "urn:egov:registry",
    "signing": "urn:egov:signing",
}


class SubjectType(enum.StrEnum):
    PUBLIC = "public"
    PAIRWISE = "pairwise"


class JuristicKind(enum.StrEnum):
    COMPANY = "company"
    AGENCY = "agency"


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    auth_method: str  # "none" or "private_key_jwt"
    jwks_json: str = ""
    subject_type: SubjectType = SubjectType.PUBLIC
    sector_identifier: str = ""
    agency: str = ""  # namespaced TH-JUR identifier of an agency machine client
    #: ``id_token_signed_response_alg`` (OIDC Registration 1.0 section 2): ES256 or RS256.
    id_token_signed_response_alg: str = "ES256"  # noqa: S105 - an algorithm name


@dataclass(frozen=True, slots=True)
class ProofingSession:
    session_id: str
    subject: str  # namespaced identifier
    target_ial: str
    state: ProofingState
    evidence: tuple[EvidenceResult, ...]
    achieved_ial: str
    failure_reason: str
    created_at: float
    expires_at: float
    person_id: str
    enrolment_code: str = ""  # only on the completion response, shown once


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    identifier: str
    attributes: PersonAttributes
    ial: str
    verification: dict[str, object] = field(default_factory=dict)
    username: str | None = None


@dataclass(frozen=True, slots=True)
class LoginSession:
    login_session_id: str
    person_id: str
    aal: int
    amr: tuple[str, ...]
    auth_time: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """An authorization request checked before anyone logs in (OIDC Core 3.1.2.2), with what
    the login must reach and what the client will receive."""

    client: Client
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    nonce: str
    code_challenge: str  # S256
    claims: str  # the claims parameter as the client sent it (JSON), kept with the code
    #: The AAL the login must reach (see ``egov_identity.domain.service.required_aal``).
    required_aal: int
    #: verified_claims asked for, by scope or in the claims parameter.
    wants_verified_claims: bool


@dataclass(frozen=True, slots=True)
class AuthorizationResult:
    code: str
    redirect_to: str


@dataclass(frozen=True, slots=True)
class TokenRequest:
    grant_type: str
    client_id: str = ""
    client_assertion: str = ""
    client_assertion_type: str = ""
    code: str = ""
    redirect_uri: str = ""
    code_verifier: str = ""
    refresh_token: str = ""
    scope: str = ""
    auth_req_id: str = ""
    subject_token: str = ""
    subject_token_type: str = ""
    act_for: str = ""
    audience: str = ""


@dataclass(frozen=True, slots=True)
class TokenResponse:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str = ""
    id_token: str = ""
    issued_token_type: str = ""
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type name


@dataclass(frozen=True, slots=True)
class CibaStart:
    auth_req_id: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class PendingApproval:
    auth_req_id: str
    client_name: str
    binding_message: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class JuristicPerson:
    identifier: str
    kind: JuristicKind
    name_th: str
    name_en: str
    directors: tuple[str, ...]
    registered_at: float


class RepresentationStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Representation:
    representation_id: str
    juristic_person: str
    representative: str
    role: str
    powers: tuple[str, ...]
    valid_from: float
    valid_until: float
    granted_by: str
    evidence: str
    status: RepresentationStatus
