"""SignDocument and SignDocuments called in-process: what a caller may ask for, and what is
refused up front with its reason, before a hash goes to keys or an id is reserved."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from egov.signing.v1 import signing_pb2 as pb
from egov.type.v1 import crypto_pb2, party_pb2
from egov_common.errors import Code, EgovError, PermissionDenied
from egov_pki.identifiers import check_digit
from egov_signing.domain.pdf_input import DocumentLimits
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.servicer import SigningServicer
from google.protobuf import timestamp_pb2
from signing_testkit import (
    FakeRegistry,
    SigningPki,
    SoftwareKeys,
    make_pdf,
    make_pki,
    with_text_field,
)

SEAL_AGENCY = "099400000001" + str(check_digit("099400000001"))
OTHER_AGENCY = "099400000002" + str(check_digit("099400000002"))


class _Context:
    def __init__(self, token: str = "") -> None:
        self._token = token

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token}"),) if self._token else ()


class _TokenBound:
    """The servicer's registry: the fake registry, whatever token it is bound to."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry

    def with_token(self, token: str) -> FakeRegistry:
        return self.registry


def _servicer(
    pki: SigningPki,
    keys: SoftwareKeys,
    registry: FakeRegistry,
    *,
    max_message_bytes: int | None = None,
) -> SigningServicer:
    signing = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    size = {} if max_message_bytes is None else {"max_message_bytes": max_message_bytes}
    return SigningServicer(
        signing,
        verifier=lambda: None,  # type: ignore[arg-type,return-value]
        limits=DocumentLimits(),
        registry=_TokenBound(registry),
        **size,
    )


def _options(**fields: object) -> pb.SignOptions:
    fields.setdefault("level", crypto_pb2.PADES_LEVEL_B_B)
    return pb.SignOptions(credential_id="cred-1", **fields)  # type: ignore[arg-type]


def _registration(agency: str = SEAL_AGENCY, key: str = "idem-1") -> pb.RegistrationRequest:
    return pb.RegistrationRequest(
        issuer=party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR, value=agency
        ),
        document_type="certificate",
        idempotency_key=key,
    )


def _sign(
    servicer: SigningServicer,
    options: pb.SignOptions,
    *,
    token: str = "",
    pdf: bytes | None = None,
) -> pb.SignResult:
    requests = iter(
        [
            pb.SignDocumentRequest(options=options),
            pb.SignDocumentRequest(chunk=make_pdf() if pdf is None else pdf),
        ]
    )
    responses = list(servicer.SignDocument(requests, _Context(token)))  # type: ignore[arg-type]
    assert b"".join(r.chunk for r in responses[1:]).startswith(b"%PDF")
    return responses[0].result


def _refusal(
    servicer: SigningServicer,
    options: pb.SignOptions,
    *,
    token: str = "",
    pdf: bytes | None = None,
) -> EgovError:
    with pytest.raises(EgovError) as err:
        _sign(servicer, options, token=token, pdf=pdf)
    return err.value


def _asked_keys(keys: SoftwareKeys) -> list[str]:
    return [kind for kind, _ in keys.received if kind in ("authorize", "sign_hash")]


def test_an_unknown_certification_permission_is_invalid_argument(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    error = _refusal(_servicer(pki, keys, FakeRegistry()), _options(certification=7))  # type: ignore[arg-type]
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "CERTIFICATION_INVALID")
    assert [v.field for v in error.field_violations] == ["options.certification"]
    assert _asked_keys(keys) == []


@pytest.mark.parametrize(
    "box",
    [
        pb.Rectangle(x1=math.nan, y1=36, x2=300, y2=126),
        pb.Rectangle(x1=36, y1=36, x2=math.inf, y2=126),
        pb.Rectangle(),  # set, but all zero: nothing would be visible
        pb.Rectangle(x1=36, y1=36, x2=36, y2=126),
    ],
)
def test_a_stamp_box_without_a_finite_area_is_invalid_argument(
    pki: SigningPki, keys: SoftwareKeys, box: pb.Rectangle
) -> None:
    options = _options(stamp=pb.VisibleStamp(box=box))
    error = _refusal(_servicer(pki, keys, FakeRegistry()), options)
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "STAMP_BOX_INVALID")
    assert [v.field for v in error.field_violations] == ["options.stamp.box"]
    assert _asked_keys(keys) == []


def test_a_stamp_in_a_box_of_the_callers_choice_is_drawn(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    box = pb.Rectangle(x1=36, y1=36, x2=300, y2=126)
    result = _sign(_servicer(pki, keys, FakeRegistry()), _options(stamp=pb.VisibleStamp(box=box)))
    assert result.field_name == "Signature1"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        # a line break would add a line of the caller's choosing to the stamp
        ("reason", "ตรวจแล้ว\nลงนามโดย นายกรัฐมนตรี", "SIGNATURE_TEXT_INVALID"),
        ("reason", "ok\x00", "SIGNATURE_TEXT_INVALID"),
        ("location", "กรุงเทพฯ\r\n", "SIGNATURE_TEXT_INVALID"),
        ("contact_info", "\x1b[31m", "SIGNATURE_TEXT_INVALID"),
        ("field_name", "Sig\n", "FIELD_NAME_INVALID"),
        ("field_name", "Sig\x00nature", "FIELD_NAME_INVALID"),
        ("field_name", "S" * 1000, "FIELD_NAME_INVALID"),
    ],
)
def test_control_characters_in_names_and_texts_are_refused(
    pki: SigningPki, keys: SoftwareKeys, field: str, value: str, reason: str
) -> None:
    options = _options(stamp=pb.VisibleStamp(), **{field: value})
    error = _refusal(_servicer(pki, keys, FakeRegistry()), options)
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, reason)
    assert [v.field for v in error.field_violations] == [f"options.{field}"]
    assert _asked_keys(keys) == []


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils absent")
def test_thai_texts_with_marks_and_spaces_are_signed_as_sent(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    servicer = _servicer(pki, keys, FakeRegistry())
    options = _options(
        stamp=pb.VisibleStamp(), reason="รับรองสำเนาถูกต้อง ๑๒๓", location="กรุงเทพฯ"
    )
    requests = iter(
        [pb.SignDocumentRequest(options=options), pb.SignDocumentRequest(chunk=make_pdf())]
    )
    pdf = b"".join(r.chunk for r in servicer.SignDocument(requests, _Context()))  # type: ignore[arg-type]
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "เหตุผล รับรองสำเนาถูกต้อง ๑๒๓" in text


def test_an_unknown_stamp_language_is_refused(pki: SigningPki, keys: SoftwareKeys) -> None:
    options = _options(stamp=pb.VisibleStamp(language="fr"))
    error = _refusal(_servicer(pki, keys, FakeRegistry()), options)
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "STAMP_LANGUAGE_INVALID")
    assert [v.field for v in error.field_violations] == ["options.stamp.language"]


def test_a_qr_code_without_registration_is_refused_not_left_out(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    options = _options(stamp=pb.VisibleStamp(include_qr_code=True))
    error = _refusal(_servicer(pki, keys, FakeRegistry()), options, token="issuer-token")
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "QR_CODE_NEEDS_REGISTRATION")
    assert _asked_keys(keys) == []


def test_in_a_batch_a_qr_code_without_registration_fails_that_document_alone(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    registry = FakeRegistry()
    request = pb.SignDocumentsRequest(
        options=_options(stamp=pb.VisibleStamp(include_qr_code=True)),
        documents=[
            pb.BatchDocument(client_reference="with", pdf=make_pdf(), registration=_registration()),
            pb.BatchDocument(client_reference="without", pdf=make_pdf()),
        ],
    )
    response = _servicer(pki, keys, registry).SignDocuments(request, _Context("issuer-token"))  # type: ignore[arg-type]
    with_qr, without = response.results
    assert with_qr.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert with_qr.result.verification_url
    assert without.error.reason == "QR_CODE_NEEDS_REGISTRATION" and not without.signed_pdf


def _past() -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=1_600_000_000)  # 2020


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"idempotency_key": ""}, "IDEMPOTENCY_KEY_MISSING", "idempotency_key"),
        ({"idempotency_key": "k" * 129}, "IDEMPOTENCY_KEY_INVALID", "idempotency_key"),
        ({"idempotency_key": "k\x00"}, "IDEMPOTENCY_KEY_INVALID", "idempotency_key"),
        ({"document_type": "Birth Certificate"}, "DOCUMENT_TYPE_INVALID", "document_type"),
        ({"metadata": {f"k{n}": "v" for n in range(33)}}, "METADATA_TOO_LARGE", "metadata"),
        ({"metadata": {"note": "x" * 9000}}, "METADATA_TOO_LARGE", "metadata"),
        ({"metadata": {"note": "a\x00b"}}, "METADATA_INVALID", "metadata['note']"),
        ({"valid_until": "past"}, "VALIDITY_INVALID", "valid_until"),
        ({"issuer": party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value="1101700230708")},
         "ISSUER_INVALID", "issuer"),
        ({"subject": party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value="1101700230700")},
         "SUBJECT_INVALID", "subject"),
        # the registry's reasons and fields for parties without a namespace or a value too
        ({"issuer": party_pb2.PartyIdentifier()}, "ISSUER_INVALID", "issuer"),
        ({"issuer": party_pb2.PartyIdentifier(value=SEAL_AGENCY)}, "ISSUER_INVALID", "issuer"),
        ({"issuer": party_pb2.PartyIdentifier(namespace=99, value=SEAL_AGENCY)},  # type: ignore[arg-type]
         "ISSUER_INVALID", "issuer"),
        ({"issuer": party_pb2.PartyIdentifier(namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR)},
         "ISSUER_INVALID", "issuer"),
        ({"subject": party_pb2.PartyIdentifier(value="1101700230708")},
         "SUBJECT_INVALID", "subject.namespace"),
        ({"subject": party_pb2.PartyIdentifier()}, "SUBJECT_INVALID", "subject.namespace"),
        ({"subject": party_pb2.PartyIdentifier(namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID)},
         "SUBJECT_INVALID", "subject"),
        # the registry finds an end already past only after the fields: its first problem
        ({"valid_until": "past", "metadata": {"note": "a\x00b"}},
         "METADATA_INVALID", "metadata['note']"),
    ],
    ids=["no-key", "long-key", "nul-key", "type", "entries", "size", "nul-value",
         "ends-before-registration", "issuer-not-juristic", "subject-check-digit",
         "issuer-empty", "issuer-without-namespace", "issuer-unknown-namespace",
         "issuer-without-value", "subject-without-namespace", "subject-empty",
         "subject-without-value", "ended-and-bad-metadata"],
)
def test_a_registration_the_registry_would_refuse_is_refused_before_anything_is_signed(
    pki: SigningPki, keys: SoftwareKeys, change: dict[str, object], reason: str, field: str
) -> None:
    # Found after signing, the registry's refusal would leave a signed, unregistered PDF and
    # the owner's authorisation spent: the same rules are checked first, with the same reason.
    registration = _registration()
    for name, value in change.items():
        if name == "metadata":
            registration.metadata.update(value)  # type: ignore[arg-type]
        elif name == "valid_until":
            registration.valid_until.CopyFrom(_past())
        elif isinstance(value, party_pb2.PartyIdentifier):
            getattr(registration, name).CopyFrom(value)
        else:
            setattr(registration, name, value)
    registry = FakeRegistry()
    error = _refusal(
        _servicer(pki, keys, registry), _options(registration=registration), token="issuer-token"
    )
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, reason)
    assert [v.field for v in error.field_violations] == [f"options.registration.{field}"]
    assert _asked_keys(keys) == []
    assert registry.reserved == [] and registry.registered == []


@pytest.mark.parametrize(
    "nanos",
    [999_999_999, 999_999_000],  # protobuf's Timestamp maximum; Python's datetime.max
    ids=["timestamp-max", "datetime-max"],
)
def test_a_validity_ending_at_the_last_instant_a_timestamp_holds_is_registered(
    pki: SigningPki, keys: SoftwareKeys, nanos: int
) -> None:
    # "valid for ever" as a client library spells it: the registry takes it (its last
    # millisecond), so signing must not refuse it as out of range
    registration = _registration()
    registration.valid_until.CopyFrom(timestamp_pb2.Timestamp(seconds=253_402_300_799, nanos=nanos))
    registry = FakeRegistry()
    result = _sign(
        _servicer(pki, keys, registry), _options(registration=registration), token="issuer-token"
    )
    assert result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert len(registry.registered) == 1


def test_in_a_batch_a_registration_the_registry_would_refuse_fails_that_document_alone(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    # one document's bad registration must not cost the others their signatures (each
    # document of a batch succeeds or fails on its own), nor be signed itself
    bad = _registration(key="idem-2")
    bad.document_type = "Birth Certificate"
    registry = FakeRegistry()
    request = pb.SignDocumentsRequest(
        options=_options(),
        documents=[
            pb.BatchDocument(client_reference="a", pdf=make_pdf(), registration=_registration()),
            pb.BatchDocument(client_reference="bad", pdf=make_pdf(), registration=bad),
            pb.BatchDocument(
                client_reference="c", pdf=make_pdf(), registration=_registration(key="idem-3")
            ),
        ],
    )
    response = _servicer(pki, keys, registry).SignDocuments(request, _Context("issuer-token"))  # type: ignore[arg-type]
    assert [r.client_reference for r in response.results] == ["a", "bad", "c"]
    first, refused, last = response.results
    assert first.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert last.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert (refused.error.code, refused.error.reason) == (
        "INVALID_ARGUMENT",
        "DOCUMENT_TYPE_INVALID",
    )
    assert "documents[1].registration.document_type" in refused.error.message
    assert not refused.signed_pdf and not refused.HasField("result")
    (authorised,) = [hashes for kind, hashes in keys.received if kind == "authorize"]
    assert len(authorised) == 2  # type: ignore[arg-type]
    assert len(registry.reserved) == 2 and len(registry.registered) == 2


def test_in_a_batch_whose_every_registration_is_refused_nothing_is_authorised(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    bad = _registration()
    bad.metadata["note"] = "a\x00b"
    registry = FakeRegistry()
    request = pb.SignDocumentsRequest(
        options=_options(),
        documents=[pb.BatchDocument(client_reference="bad", pdf=make_pdf(), registration=bad)],
    )
    response = _servicer(pki, keys, registry).SignDocuments(request, _Context("issuer-token"))  # type: ignore[arg-type]
    (refused,) = response.results
    assert (refused.client_reference, refused.error.reason) == ("bad", "METADATA_INVALID")
    assert _asked_keys(keys) == []
    assert registry.reserved == [] and registry.registered == []


def test_a_retried_signing_whose_registration_went_through_is_refused_before_signing(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    # The first answer was lost: signing again would make a second PDF whose registration the
    # registry refuses (its key is taken), and the caller would still not know the first.
    registry = FakeRegistry()
    servicer = _servicer(pki, keys, registry)
    options = _options(registration=_registration(key="k-retry"))
    first = _sign(servicer, options, token="issuer-token")
    assert first.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    asked = len(_asked_keys(keys))

    error = _refusal(servicer, options, token="issuer-token")
    assert (error.code, error.reason) == (Code.ALREADY_EXISTS, "ALREADY_REGISTERED")
    assert error.metadata["document_id"] == first.document_id
    assert len(_asked_keys(keys)) == asked  # nothing authorised or signed again
    assert len(registry.reserved) == 1 and len(registry.registered) == 1


class _RacedRegistry(FakeRegistry):
    """Another signing with the same key registers its document between this one's
    reservation and its registration (a client retrying before the first answer came)."""

    def reserve_document_id(self, spec):  # type: ignore[no-untyped-def]
        reserved = super().reserve_document_id(spec)
        self.keys[spec.idempotency_key] = "DOC-RACED"
        return reserved


def test_a_signing_that_lost_the_race_for_its_key_names_the_registered_document(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    # The registry names the document in its error's metadata, which an ItemError has no
    # place for: without the id in the message the caller holds an unregistered PDF and
    # cannot tell which document its key registered.
    registry = _RacedRegistry()
    servicer = _servicer(pki, keys, registry)
    result = _sign(servicer, _options(registration=_registration(key="k-race")), token="t")
    assert result.registration_status == pb.REGISTRATION_STATUS_UNREGISTERED
    assert result.registration_error.reason == "IDEMPOTENCY_KEY_REUSED"
    assert "DOC-RACED" in result.registration_error.message

    registry = _RacedRegistry()
    response = _servicer(pki, keys, registry).SignDocuments(  # type: ignore[arg-type]
        pb.SignDocumentsRequest(
            options=_options(),
            documents=[
                pb.BatchDocument(
                    client_reference="a", pdf=make_pdf(), registration=_registration(key="k-b")
                )
            ],
        ),
        _Context("t"),
    )
    (raced,) = response.results
    assert raced.result.registration_error.reason == "IDEMPOTENCY_KEY_REUSED"
    assert "DOC-RACED" in raced.result.registration_error.message


def test_in_a_batch_a_document_registered_already_fails_alone_naming_it(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    registry = FakeRegistry(keys={"k-done": "DOC-DONE"})
    request = pb.SignDocumentsRequest(
        options=_options(),
        documents=[
            pb.BatchDocument(
                client_reference="done", pdf=make_pdf(), registration=_registration(key="k-done")
            ),
            pb.BatchDocument(
                client_reference="new", pdf=make_pdf(), registration=_registration(key="k-new")
            ),
        ],
    )
    response = _servicer(pki, keys, registry).SignDocuments(request, _Context("t"))  # type: ignore[arg-type]
    done, new = response.results
    assert (done.error.code, done.error.reason) == ("ALREADY_EXISTS", "ALREADY_REGISTERED")
    assert "DOC-DONE" in done.error.message and not done.signed_pdf
    assert new.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    (authorised,) = [hashes for kind, hashes in keys.received if kind == "authorize"]
    assert len(authorised) == 1  # type: ignore[arg-type]


def test_without_a_callers_token_a_person_cannot_register_for_an_agency(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    # no token: the registry would hear signing's own (any-agency) authority
    registry = FakeRegistry()
    error = _refusal(_servicer(pki, keys, registry), _options(registration=_registration()))
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "ISSUER_NOT_SEAL_OWNER")
    assert registry.reserved == [] and registry.registered == []
    assert _asked_keys(keys) == []


def test_without_a_callers_token_an_e_seal_registers_only_for_its_own_agency() -> None:
    seal = make_pki(seal_agency=SEAL_AGENCY)
    registry = FakeRegistry()
    servicer = _servicer(seal, SoftwareKeys(seal), registry)
    error = _refusal(servicer, _options(registration=_registration(OTHER_AGENCY)))
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "ISSUER_NOT_SEAL_OWNER")
    assert registry.reserved == []
    result = _sign(servicer, _options(registration=_registration(SEAL_AGENCY)))
    assert result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert registry.reserved == [f"TH-JUR:{SEAL_AGENCY}"]


def test_without_a_callers_token_a_representatives_signature_registers_nothing() -> None:
    # a legal-person certificate names its company as an e-seal's names its agency, but its
    # representative holds no issuer role: signing's own (any-agency) registry authority is
    # lent to an agency's e-seal only
    company = make_pki(seal_agency=SEAL_AGENCY, legal_person=True)
    registry = FakeRegistry()
    keys = SoftwareKeys(company)
    error = _refusal(_servicer(company, keys, registry), _options(registration=_registration()))
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "ISSUER_NOT_SEAL_OWNER")
    assert registry.reserved == [] and registry.registered == []
    assert _asked_keys(keys) == []


def test_with_a_callers_token_the_registry_decides_who_may_register(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    registry = FakeRegistry()
    options = _options(registration=_registration(OTHER_AGENCY))
    result = _sign(_servicer(pki, keys, registry), options, token="issuer-token")
    assert result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert registry.reserved == [f"TH-JUR:{OTHER_AGENCY}"]


def test_in_a_tokenless_batch_a_document_for_another_agency_fails_alone() -> None:
    seal = make_pki(seal_agency=SEAL_AGENCY)
    registry = FakeRegistry()
    request = pb.SignDocumentsRequest(
        options=_options(),
        documents=[
            pb.BatchDocument(client_reference="own", pdf=make_pdf(), registration=_registration()),
            pb.BatchDocument(
                client_reference="other",
                pdf=make_pdf(),
                registration=_registration(OTHER_AGENCY, "idem-2"),
            ),
        ],
    )
    response = _servicer(seal, SoftwareKeys(seal), registry).SignDocuments(request, _Context())  # type: ignore[arg-type]
    own, other = response.results
    assert own.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert (other.error.code, other.error.reason) == ("PERMISSION_DENIED", "ISSUER_NOT_SEAL_OWNER")
    assert registry.reserved == [f"TH-JUR:{SEAL_AGENCY}"]


def test_a_batch_naming_one_idempotency_key_twice_signs_the_second_document_not(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    registry = FakeRegistry()
    request = pb.SignDocumentsRequest(
        options=_options(),
        documents=[
            pb.BatchDocument(client_reference=f"doc-{n}", pdf=make_pdf(), registration=reg)
            for n, reg in enumerate([_registration(key="k"), _registration(key="k")])
        ],
    )
    response = _servicer(pki, keys, registry).SignDocuments(request, _Context("issuer-token"))  # type: ignore[arg-type]
    first, second = response.results
    assert first.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    assert (second.error.code, second.error.reason) == (
        "INVALID_ARGUMENT",
        "IDEMPOTENCY_KEY_REPEATED",
    )
    assert not second.signed_pdf
    (authorised,) = [hashes for kind, hashes in keys.received if kind == "authorize"]
    assert len(authorised) == 1  # type: ignore[arg-type]
    assert len(registry.reserved) == 1


# -- a caller without a token of its own: keys accepts its proof before signing's registry
# -- authority is used for it


class _RefusingKeys(SoftwareKeys):
    """keys refusing the caller's proof for the credential (here: no token, no proof)."""

    def authorize(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.received.append(("authorize", "refused"))
        raise PermissionDenied("SCOPE_MISSING", "the caller lacks the seal scope")


@pytest.mark.parametrize("key", ["agency-order-41", "agency-order-42"], ids=["new", "registered"])
def test_a_tokenless_caller_without_the_seals_proof_learns_nothing_of_the_registry(
    key: str,
) -> None:
    # Signing's own registry authority covers any agency: reserving for a caller that keys
    # has not accepted would answer ALREADY_REGISTERED with the id of the document the agency
    # registered under the key (which the registry itself refuses that caller), or leave a
    # reservation behind for a wrong guess.
    seal = make_pki(seal_agency=SEAL_AGENCY)
    registry = FakeRegistry(keys={"agency-order-42": "DOC-SECRET-9999"})
    keys = _RefusingKeys(seal)
    error = _refusal(_servicer(seal, keys, registry), _options(registration=_registration(key=key)))
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "SCOPE_MISSING")
    assert "document_id" not in error.metadata and "DOC-SECRET" not in error.message
    assert registry.reserved == [] and registry.registered == []
    assert _asked_keys(keys) == ["authorize"]  # that refusal only: nothing was signed


def test_a_tokenless_e_seal_signing_retried_after_a_lost_answer_is_refused_before_signing() -> (
    None
):
    seal = make_pki(seal_agency=SEAL_AGENCY)
    keys = SoftwareKeys(seal)
    registry = FakeRegistry()
    servicer = _servicer(seal, keys, registry)
    options = _options(authorization_proof="agency-client-token", registration=_registration())
    first = _sign(servicer, options)
    assert first.registration_status == pb.REGISTRATION_STATUS_REGISTERED
    signed = [kind for kind, _ in keys.received].count("sign_hash")

    error = _refusal(servicer, options)
    assert (error.code, error.reason) == (Code.ALREADY_EXISTS, "ALREADY_REGISTERED")
    assert error.metadata["document_id"] == first.document_id
    assert [kind for kind, _ in keys.received].count("sign_hash") == signed
    assert len(registry.reserved) == 1 and len(registry.registered) == 1


def _certified(pki: SigningPki, permission: int, pdf: bytes | None = None) -> bytes:
    signing = PdfSigningService(SoftwareKeys(pki))
    return signing.sign(
        pdf or make_pdf(), SignOptions("cred-1", Level.B_B, certification=permission)
    ).pdf


@pytest.mark.parametrize(
    ("document", "change", "code", "reason"),
    [
        ("certified-p1", {}, Code.FAILED_PRECONDITION, "DOCUMENT_CERTIFIED_NO_CHANGES"),
        ("certified-p2", {"stamp": pb.VisibleStamp()}, Code.FAILED_PRECONDITION,
         "DOCUMENT_CERTIFIED_NO_NEW_STAMP"),
        ("certified-p3", {"stamp": pb.VisibleStamp()}, Code.FAILED_PRECONDITION,
         "DOCUMENT_CERTIFIED_NO_NEW_STAMP"),
        ("certified-p2", {"certification": pb.DOC_MDP_PERMISSION_FORM_FILLING},
         Code.FAILED_PRECONDITION, "CERTIFICATION_NOT_FIRST"),
        ("plain", {"stamp": pb.VisibleStamp(page=5)}, Code.INVALID_ARGUMENT,
         "STAMP_PAGE_OUT_OF_RANGE"),
        ("text-field", {"field_name": "Remarks"}, Code.FAILED_PRECONDITION,
         "FIELD_NOT_A_SIGNATURE_FIELD"),
    ],
)
def test_what_the_document_alone_refuses_is_refused_before_a_document_id_is_reserved(
    pki: SigningPki,
    keys: SoftwareKeys,
    document: str,
    change: dict[str, object],
    code: Code,
    reason: str,
) -> None:
    pdf = {
        "certified-p1": lambda: _certified(pki, 1),
        "certified-p2": lambda: _certified(pki, 2),
        "certified-p3": lambda: _certified(pki, 3),
        "plain": make_pdf,
        "text-field": lambda: with_text_field(make_pdf(), "Remarks", "ok"),
    }[document]()
    registry = FakeRegistry()
    options = _options(registration=_registration(), **change)
    error = _refusal(_servicer(pki, keys, registry), options, token="issuer-token", pdf=pdf)
    assert (error.code, error.reason) == (code, reason)
    assert registry.reserved == [] and _asked_keys(keys) == []


# -- names and texts


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("reason", "REASON_TOO_LONG"),
        ("location", "LOCATION_TOO_LONG"),
        ("contact_info", "CONTACT_INFO_TOO_LONG"),
    ],
)
def test_signature_texts_longer_than_256_characters_are_refused_naming_the_field(
    pki: SigningPki, keys: SoftwareKeys, field: str, reason: str
) -> None:
    # a 7 MB reason took 13 s of CPU and 1 GiB to shape into the stamp
    servicer = _servicer(pki, keys, FakeRegistry())
    error = _refusal(servicer, _options(stamp=pb.VisibleStamp(), **{field: "ก" * 257}))
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, reason)
    assert [v.field for v in error.field_violations] == [f"options.{field}"]
    assert _asked_keys(keys) == []
    result = _sign(servicer, _options(stamp=pb.VisibleStamp(), **{field: "ก" * 256}))
    assert result.field_name == "Signature1"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("reason", "\u202eevorppa", "SIGNATURE_TEXT_INVALID"),  # right-to-left override
        ("location", "\u2066กรุงเทพฯ\u2069", "SIGNATURE_TEXT_INVALID"),  # isolates
        ("contact_info", "\u200fme@example.org", "SIGNATURE_TEXT_INVALID"),  # RLM
        ("reason", "\ufeffok", "SIGNATURE_TEXT_INVALID"),  # BOM
        ("field_name", "Sig\u202egnp.exe", "FIELD_NAME_INVALID"),
        ("field_name", "Signature\u200b1", "FIELD_NAME_INVALID"),  # looks like Signature1
    ],
    ids=["rlo", "isolates", "rlm", "bom", "name-rlo", "name-zwsp"],
)
def test_bidi_and_format_characters_in_names_and_texts_are_refused(
    pki: SigningPki, keys: SoftwareKeys, field: str, value: str, reason: str
) -> None:
    options = _options(stamp=pb.VisibleStamp(language="en"), **{field: value})
    error = _refusal(_servicer(pki, keys, FakeRegistry()), options)
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, reason)
    assert [v.field for v in error.field_violations] == [f"options.{field}"]
    assert _asked_keys(keys) == []


def test_a_thai_reason_with_zero_width_spaces_between_words_is_signed(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    options = _options(stamp=pb.VisibleStamp(), reason="รับรอง\u200bสำเนา\u200bถูกต้อง")
    assert _sign(_servicer(pki, keys, FakeRegistry()), options).field_name == "Signature1"


def test_the_default_field_name_is_one_no_field_of_the_form_has(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    # a text field named Signature1 made the default name clash (pyHanko refused the form)
    pdf = with_text_field(make_pdf(), "Signature1", "hello")
    result = _sign(_servicer(pki, keys, FakeRegistry()), _options(), pdf=pdf)
    assert result.field_name == "Signature2"


# -- a SignDocuments answer must fit in one message


def _batch(n: int, **options: object) -> pb.SignDocumentsRequest:
    return pb.SignDocumentsRequest(
        options=_options(**options),
        documents=[
            pb.BatchDocument(
                client_reference=f"doc-{i}",
                pdf=make_pdf(image_bytes=30_000),
                registration=_registration(key=f"idem-{i}"),
            )
            for i in range(n)
        ],
    )


def test_a_batch_whose_answer_would_not_fit_in_a_message_is_refused_before_signing(
    pki: SigningPki,
) -> None:
    # gRPC refuses to send an answer over the message size: found then, every document was
    # signed and registered, and the caller got none of them
    options = {
        "level": crypto_pb2.PADES_LEVEL_B_LTA,
        "stamp": pb.VisibleStamp(include_qr_code=True),
    }
    answer = _servicer(pki, SoftwareKeys(pki), FakeRegistry()).SignDocuments(  # type: ignore[arg-type]
        _batch(3, **options), _Context("t")
    )
    size = answer.ByteSize()

    keys, registry = SoftwareKeys(pki), FakeRegistry()
    servicer = _servicer(pki, keys, registry, max_message_bytes=size - 1)
    with pytest.raises(EgovError) as err:
        servicer.SignDocuments(_batch(3, **options), _Context("t"))  # type: ignore[arg-type]
    assert (err.value.code, err.value.reason) == (Code.INVALID_ARGUMENT, "BATCH_TOO_LARGE")
    assert int(err.value.metadata["max_answer_bytes"]) <= size - 1
    assert int(err.value.metadata["min_calls"]) >= 2
    assert "split the batch" in err.value.message
    assert _asked_keys(keys) == [] and registry.registered == []

    # the estimate is an upper bound, not a wild one
    fits = _servicer(pki, SoftwareKeys(pki), FakeRegistry(), max_message_bytes=size * 13 // 10)
    answer = fits.SignDocuments(_batch(3, **options), _Context("t"))  # type: ignore[arg-type]
    assert all(
        r.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED for r in answer.results
    )


def test_a_batch_whose_documents_alone_exceed_the_answer_is_refused_before_any_reservation(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    request = _batch(3)
    registry = FakeRegistry()
    servicer = _servicer(
        pki, keys, registry, max_message_bytes=sum(len(d.pdf) for d in request.documents)
    )
    with pytest.raises(EgovError) as err:
        servicer.SignDocuments(request, _Context("t"))  # type: ignore[arg-type]
    assert err.value.reason == "BATCH_TOO_LARGE"
    assert registry.reserved == [] and _asked_keys(keys) == []
