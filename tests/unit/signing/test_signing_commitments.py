"""What is checked before signing commits something for its caller: a deadline that has passed,
a revoked credential, a time-stamp authority that is down, a certification that a new stamp
would break. Each is found before keys authorises or signs, or the registry registers."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pytest
from egov_common.errors import Code, EgovError
from egov_signing.adapters.tsa import HttpTimeStamper
from egov_signing.domain.ports import Party, RegistrationSpec, ReservedDocumentId
from egov_signing.domain.report import Indication, document_verdict
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.stamp import StampSpec
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from pyhanko.sign.timestamps.api import TimeStamper
from signing_testkit import (
    FakeRegistry,
    SigningPki,
    SoftwareKeys,
    make_pdf,
    make_pki,
    with_empty_signature_field,
)


def _spec(key: str = "idem-1") -> RegistrationSpec:
    return RegistrationSpec(Party("TH-JUR", "0105500000001"), "certificate", key)


def _asked(keys: SoftwareKeys) -> list[str]:
    return [kind for kind, _ in keys.received if kind in ("authorize", "sign_hash")]


class _CallerClock:
    """The caller's remaining time: plenty until :meth:`leave`, then past."""

    def __init__(self) -> None:
        self.gone = False

    def leave(self) -> None:
        self.gone = True

    def __call__(self) -> float | None:
        return -0.01 if self.gone else 30.0


def _service(
    pki: SigningPki,
    keys: SoftwareKeys,
    registry: FakeRegistry | None = None,
    *,
    time_left: _CallerClock | None = None,
    timestamper: TimeStamper | None = None,
) -> PdfSigningService:
    deadline = {} if time_left is None else {"time_left": time_left}
    return PdfSigningService(
        keys,
        registry=registry,
        timestamper=timestamper or pki.timestamper(),
        validation_context_factory=pki.validation_context,
        **deadline,  # type: ignore[arg-type]
    )


# -- the caller's deadline


class _KeysTheCallerLeaves(SoftwareKeys):
    """The caller's deadline passes while keys signs (e.g. during the B-LTA time-stamps)."""

    clock: _CallerClock | None = None

    def sign_hash(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        values = super().sign_hash(*args, **kwargs)
        assert self.clock is not None
        self.clock.leave()
        return values


def test_a_document_whose_caller_is_gone_after_signing_is_not_registered(
    pki: SigningPki,
) -> None:
    # registered, it would be an issued document nobody holds (its PDF is kept nowhere)
    clock, registry = _CallerClock(), FakeRegistry()
    keys = _KeysTheCallerLeaves(pki)
    keys.clock = clock
    service = _service(pki, keys, registry, time_left=clock)
    with pytest.raises(EgovError) as err:
        service.sign(make_pdf(), SignOptions("cred-1", Level.B_T, registration=_spec()))
    assert (err.value.code, err.value.reason) == (
        Code.DEADLINE_EXCEEDED,
        "SIGNING_DEADLINE_EXCEEDED",
    )
    assert registry.registered == []


class _RegistryTheCallerLeaves(FakeRegistry):
    clock: _CallerClock | None = None

    def reserve_document_id(self, spec: RegistrationSpec) -> ReservedDocumentId:
        reserved = super().reserve_document_id(spec)
        assert self.clock is not None
        self.clock.leave()
        return reserved


def test_a_caller_gone_before_the_authorisation_spends_nothing(pki: SigningPki) -> None:
    clock = _CallerClock()
    registry = _RegistryTheCallerLeaves()
    registry.clock = clock
    keys = SoftwareKeys(pki)
    with pytest.raises(EgovError) as err:
        _service(pki, keys, registry, time_left=clock).sign(
            make_pdf(), SignOptions("cred-1", Level.B_B, registration=_spec())
        )
    assert err.value.reason == "SIGNING_DEADLINE_EXCEEDED"
    assert _asked(keys) == [] and registry.registered == []


def test_a_batch_whose_caller_is_gone_registers_none_of_its_documents(pki: SigningPki) -> None:
    from egov_signing.domain.signing import BatchItem

    clock, registry = _CallerClock(), FakeRegistry()
    keys = _KeysTheCallerLeaves(pki)
    keys.clock = clock
    items = [BatchItem(f"doc-{n}", make_pdf(), _spec(f"idem-{n}")) for n in range(2)]
    with pytest.raises(EgovError) as err:
        _service(pki, keys, registry, time_left=clock).sign_batch(
            items, SignOptions("cred-1", Level.B_B)
        )
    assert err.value.reason == "SIGNING_DEADLINE_EXCEEDED"
    assert registry.registered == []


# -- a revoked credential


@pytest.mark.parametrize("level", [Level.B_LT, Level.B_LTA])
def test_a_revoked_credential_is_credential_revoked_at_the_long_term_levels(
    level: Level,
) -> None:
    # as keys says it at B-B and B-T: FAILED_PRECONDITION, not UNAVAILABLE (a retry cannot help)
    revoked = make_pki(revoke_signer=True)
    keys = SoftwareKeys(revoked)
    with pytest.raises(EgovError) as err:
        _service(revoked, keys).sign(make_pdf(), SignOptions("cred-1", level))
    assert (err.value.code, err.value.reason) == (Code.FAILED_PRECONDITION, "CREDENTIAL_REVOKED")
    assert "revoked_at" in err.value.metadata
    assert _asked(keys) == []


def test_revocation_data_that_cannot_be_had_stays_revocation_unavailable(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    from pyhanko_certvalidator import ValidationContext

    service = PdfSigningService(
        keys,
        timestamper=pki.timestamper(),
        validation_context_factory=lambda: ValidationContext(
            trust_roots=[pki.asn1(pki.root)],
            crls=[],
            ocsps=[],
            allow_fetching=False,
            revocation_mode="hard-fail",
        ),
    )
    with pytest.raises(EgovError) as err:
        service.sign(make_pdf(), SignOptions("cred-1", Level.B_LT))
    assert (err.value.code, err.value.reason) == (Code.UNAVAILABLE, "REVOCATION_UNAVAILABLE")
    assert _asked(keys) == []


def test_a_signer_certificate_without_a_trusted_path_is_not_called_unavailable(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    # no retry helps: FAILED_PRECONDITION, where the keywords of its message made it
    # UNAVAILABLE REVOCATION_UNAVAILABLE
    from pyhanko_certvalidator import ValidationContext

    stranger = make_pki()
    service = PdfSigningService(
        keys,
        timestamper=pki.timestamper(),
        validation_context_factory=lambda: ValidationContext(
            trust_roots=[stranger.asn1(stranger.root)],
            crls=[],
            ocsps=[],
            allow_fetching=False,
            revocation_mode="hard-fail",
        ),
    )
    with pytest.raises(EgovError) as err:
        service.sign(make_pdf(), SignOptions("cred-1", Level.B_LT))
    assert (err.value.code, err.value.reason) == (
        Code.FAILED_PRECONDITION,
        "SIGNER_CERTIFICATE_INVALID",
    )
    assert _asked(keys) == []


# -- the time-stamp authority


def test_b_t_with_the_time_stamp_authority_down_asks_keys_nothing(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    # found after SignHash, the owner's authorisation would be spent for nothing
    down = HttpTimeStamper(lambda: "http://127.0.0.1:9/tsa", timeout=2.0)
    registry = FakeRegistry()
    try:
        with pytest.raises(EgovError) as err:
            _service(pki, keys, registry, timestamper=down).sign(
                make_pdf(), SignOptions("cred-1", Level.B_T, registration=_spec())
            )
    finally:
        down.close()
    assert (err.value.code, err.value.reason) == (Code.UNAVAILABLE, "TSA_UNAVAILABLE")
    assert _asked(keys) == [] and registry.reserved == []


class _CountingTimeStamper(TimeStamper):
    def __init__(self, inner: TimeStamper) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.inner = inner
        self.requests = 0

    async def async_request_tsa_response(self, req):  # type: ignore[no-untyped-def]
        self.requests += 1
        return await self.inner.async_request_tsa_response(req)


def test_the_time_stamp_authority_is_checked_once_for_documents_in_quick_succession(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    stamper = _CountingTimeStamper(pki.timestamper())
    service = _service(pki, keys, timestamper=stamper)
    for _ in range(3):
        service.sign(make_pdf(), SignOptions("cred-1", Level.B_T))
    assert stamper.requests == 1 + 3  # the check, then one signature time-stamp each


# -- certified documents


def _certified(pki: SigningPki, permission: int, pdf: bytes) -> bytes:
    return _service(pki, SoftwareKeys(pki)).sign(
        pdf, SignOptions("cred-1", Level.B_B, certification=permission, field_name="Author")
    ).pdf


@pytest.mark.parametrize("permission", [2, 3])
def test_a_new_visible_stamp_on_a_certified_document_is_refused_before_signing(
    pki: SigningPki, keys: SoftwareKeys, permission: int
) -> None:
    # signed, the certification would be TOTAL_FAILED/ILLEGAL_MODIFICATIONS by our own verifier
    registry = FakeRegistry()
    with pytest.raises(EgovError) as err:
        _service(pki, keys, registry).sign(
            _certified(pki, permission, make_pdf()),
            SignOptions("cred-1", Level.B_B, stamp=StampSpec(), registration=_spec()),
        )
    assert (err.value.code, err.value.reason) == (
        Code.FAILED_PRECONDITION,
        "DOCUMENT_CERTIFIED_NO_NEW_STAMP",
    )
    assert _asked(keys) == [] and registry.reserved == []


@pytest.mark.parametrize(
    ("field_name", "stamp"),
    [("Approver", StampSpec(language="en")), ("", None)],
    ids=["stamp-in-the-empty-field", "invisible"],
)
@pytest.mark.parametrize("permission", [2, 3])
def test_a_certified_document_takes_a_stamp_in_its_empty_field_or_an_invisible_signature(
    pki: SigningPki, keys: SoftwareKeys, permission: int, field_name: str, stamp: StampSpec | None
) -> None:
    pdf = _certified(
        pki, permission, with_empty_signature_field(make_pdf(), "Approver", (300, 36, 560, 126))
    )
    signed = _service(pki, keys).sign(
        pdf, SignOptions("cred-1", Level.B_B, field_name=field_name, stamp=stamp)
    )
    verifier = DocumentVerifier(
        TrustAnchors([pki.root_pem]), revocation_mode=RevocationMode.SOFT_FAIL
    )
    report = verifier.verify(signed.pdf)
    verdict = document_verdict(report, registry_revoked=False)
    assert verdict.indication is Indication.TOTAL_PASSED, [s.reasons for s in report.signatures]


# -- logs


@pytest.fixture
def quiet() -> Iterator[None]:
    from egov_signing.__main__ import quiet_libraries

    names = ("pyhanko", "pyhanko_certvalidator", "fontTools")
    levels = {name: logging.getLogger(name).level for name in names}
    quiet_libraries()
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_a_stamp_leaves_no_font_subsetting_lines_in_the_log(
    pki: SigningPki, keys: SoftwareKeys, quiet: None, caplog: pytest.LogCaptureFixture
) -> None:
    # fontTools' INFO lines name every glyph drawn: the letters of the signer's name and reason
    with caplog.at_level(logging.INFO):
        _service(pki, keys).sign(
            make_pdf(), SignOptions("cred-1", Level.B_B, reason="ตรวจแล้ว", stamp=StampSpec())
        )
    noisy: Sequence[logging.LogRecord] = [
        r for r in caplog.records if r.name.startswith("fontTools") and r.levelno < logging.WARNING
    ]
    assert noisy == []
