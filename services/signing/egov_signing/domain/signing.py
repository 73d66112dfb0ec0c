"""PAdES signing with a key that stays in the keys service.

The flow, for one document or a batch (one authorisation for all):

1. each PDF is prepared once with the signature size reserved up front (no dry-run build), its
   /ByteRange digest computed and its CMS signed attributes built;
2. the digests of the signed attributes of every document go to keys.Authorize in one call (one
   SAD) and to keys.SignHash in one call: only hashes cross that port;
3. :class:`RemoteKeySigner` (a pyHanko ``Signer``) packages each returned signature value into
   the CMS; pyHanko adds the signature time-stamp (B-T), the DSS (B-LT) and a document
   time-stamp (B-LTA);
4. the final PDF is registered when asked; a registration failure leaves the document signed
   with status UNREGISTERED and the reason.

Each document is signed in place: the incremental update (and, for B-LT/B-LTA, the DSS and the
document time-stamp) is appended to the stream the document came in, and its digest and SHA-256
are read through in chunks. A document handed over as a stream (a large upload in a temporary
file) is therefore never held whole in memory, and one handed over as bytes is copied once.

A document that fails before step 2 is reported on its own and left out of the authorisation;
the others go on. Whatever can be refused locally (the options, the PDF, the field, a
certification that forbids the signature, the stamp's page) is refused before a document id is
reserved; the caller's deadline is checked before each call that commits something (reserve,
Authorize, SignHash, register), and a caller who sent no token of its own is shown by keys to
act for the e-seal's agency before signing's own registry authority is used for it.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import math
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, cast

from asn1crypto import algos, tsp, x509
from cryptography import x509 as crypto_x509
from egov_common import deadlines
from egov_common.clock import Clock, SystemClock
from egov_common.errors import (
    DeadlineExceeded,
    EgovError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from egov_pki.profiles import parse_subject
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfDecodeLimitError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields as pdf_fields
from pyhanko.sign.attributes import SigningCertificateV2Provider
from pyhanko.sign.general import SigningError, as_signing_certificate_v2
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.signers.pdf_signer import (
    PdfPostSignatureDocument,
    PdfSignatureMetadata,
    PdfSigner,
    PdfTBSDocument,
    PreSignValidationStatus,
)
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import read_certification_data
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    CRLValidationError,
    ExpiredError,
    InsufficientRevinfoError,
    OCSPValidationError,
    PathError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.registry import SimpleCertificateStore

from . import aio
from .pdf_input import (
    DocumentLimits,
    PdfSource,
    as_stream,
    decompression_refused,
    open_untrusted_pdf,
    read_all,
    scan_document,
    stream_size,
)
from .ports import (
    KeyAlgorithm,
    KeysPort,
    RegistrationSpec,
    RegistryPort,
    ReservedDocumentId,
    SigningCredential,
)
from .stamp import StampSpec, name_values, pick_for_language, stamp_lines, stamp_style

__all__ = [
    "BatchItem",
    "DocumentOutcome",
    "Level",
    "PdfSigningService",
    "RegistrationStatus",
    "RemoteKeySigner",
    "SignOptions",
    "SignedDocument",
]

_log = logging.getLogger(__name__)

FIELD_NOT_FOUND = "FIELD_NOT_FOUND"
FIELD_ALREADY_SIGNED = "FIELD_ALREADY_SIGNED"
TSA_UNAVAILABLE = "TSA_UNAVAILABLE"
REVOCATION_UNAVAILABLE = "REVOCATION_UNAVAILABLE"
SIGNATURE_MISSING = "SIGNATURE_MISSING"
FIELD_NAME_INVALID = "FIELD_NAME_INVALID"
SIGNATURE_TEXT_INVALID = "SIGNATURE_TEXT_INVALID"
STAMP_BOX_INVALID = "STAMP_BOX_INVALID"
QR_CODE_NEEDS_REGISTRATION = "QR_CODE_NEEDS_REGISTRATION"
ISSUER_NOT_SEAL_OWNER = "ISSUER_NOT_SEAL_OWNER"
IDEMPOTENCY_KEY_REPEATED = "IDEMPOTENCY_KEY_REPEATED"
FIELD_NOT_A_SIGNATURE_FIELD = "FIELD_NOT_A_SIGNATURE_FIELD"
STAMP_PAGE_OUT_OF_RANGE = "STAMP_PAGE_OUT_OF_RANGE"
DOCUMENT_CERTIFIED_NO_CHANGES = "DOCUMENT_CERTIFIED_NO_CHANGES"
DOCUMENT_CERTIFIED_NO_NEW_STAMP = "DOCUMENT_CERTIFIED_NO_NEW_STAMP"
CERTIFICATION_NOT_FIRST = "CERTIFICATION_NOT_FIRST"
PDF_CANNOT_BE_SIGNED = "PDF_CANNOT_BE_SIGNED"
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
SIGNING_DEADLINE_EXCEEDED = "SIGNING_DEADLINE_EXCEEDED"
#: keys' own reasons, when signing finds the same about the signer's certificate first
CREDENTIAL_REVOKED = "CREDENTIAL_REVOKED"
CREDENTIAL_EXPIRED = "CREDENTIAL_EXPIRED"
ISSUER_REVOKED = "ISSUER_REVOKED"
SIGNER_CERTIFICATE_INVALID = "SIGNER_CERTIFICATE_INVALID"

#: longest signature field name accepted (it is shown in every validation report)
MAX_FIELD_NAME_CHARS = 128
#: longest reason, location and contact info accepted (the reason is drawn in the stamp, and
#: shaping and subsetting its text costs time and memory with its length)
MAX_SIGNATURE_TEXT_CHARS = 256
#: format characters a text may hold: the zero-width space (Thai marks word breaks with it)
_ALLOWED_FORMAT_CHARACTERS = frozenset("\u200b")
#: the texts of the signature dictionary, with the reason each one's length is refused with
_SIGNATURE_TEXTS = (
    ("reason", "REASON_TOO_LONG"),
    ("location", "LOCATION_TOO_LONG"),
    ("contact_info", "CONTACT_INFO_TOO_LONG"),
)
#: A time-stamp authority that answered this recently is taken to be up (seconds).
TSA_CHECK_SECONDS = 5.0
#: Result fields of one document in a SignDocuments answer besides its PDF (hash, ids, URL,
#: an error message, the message framing): a generous bound.
ANSWER_BYTES_PER_DOCUMENT = 2048
#: What keys is told when the caller's authority is checked before a reservation.
_AUTHORITY_CHECK_DESCRIPTION = (
    "authority check before a document id is reserved on signing's registry authority; "
    "nothing is signed under this authorisation"
)

_HASH = "sha256"
#: read size when pyHanko digests a stream that is not in memory
_IO_CHUNK = 64 * 1024


class Level(enum.StrEnum):
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


class RegistrationStatus(enum.StrEnum):
    NOT_REQUESTED = "NOT_REQUESTED"
    REGISTERED = "REGISTERED"
    UNREGISTERED = "UNREGISTERED"


@dataclass(frozen=True)
class SignOptions:
    """How to sign; ``certification`` is a DocMDP P value (1, 2, 3) or None for approval.

    ``registry_on_own_authority``: the registry will hear signing's own authority, not the
    caller's (the caller sent no token); a document is then registered only for the agency
    whose e-seal signs it (a credential keys calls an e-seal, the agency named by its
    certificate's ``organizationIdentifier`` ``NTRTH-<number>``), never for a legal person's
    signature, whose certificate names its company alike but whose representative is no issuer.
    """

    credential_id: str
    level: Level
    authorization_proof: str = ""
    field_name: str = ""
    reason: str = ""
    location: str = ""
    contact_info: str = ""
    certification: int | None = None
    stamp: StampSpec | None = None
    registration: RegistrationSpec | None = None
    description: str = ""
    registry_on_own_authority: bool = False


@dataclass(frozen=True)
class SignedDocument:
    """A signed PDF. ``document`` is the stream it was signed in (the input stream itself when
    one was given); read it in chunks, or take :attr:`pdf` for small documents."""

    document: BinaryIO
    size_bytes: int
    sha256: bytes
    level: Level
    field_name: str
    signing_time: datetime
    registration_status: RegistrationStatus
    document_id: str = ""
    verification_url: str = ""
    registration_error: EgovError | None = None

    @property
    def pdf(self) -> bytes:
        """The whole signed PDF in memory."""
        return read_all(self.document)


@dataclass(frozen=True)
class BatchItem:
    """``pdf`` as bytes, or a readable, writable, seekable stream that is signed in place."""

    client_reference: str
    pdf: PdfSource
    registration: RegistrationSpec | None = None


@dataclass(frozen=True)
class DocumentOutcome:
    client_reference: str
    signed: SignedDocument | None = None
    error: EgovError | None = None


class RemoteKeySigner(Signer):
    """A pyHanko ``Signer`` whose key lives in the keys service.

    Signature values come from :meth:`provide` (filled from one keys.SignHash call for a whole
    batch). Without a provided value and with ``on_demand`` set, it authorises and signs the one
    digest itself. A dry run (pyHanko's size estimate) returns zeros of the key's maximal
    signature length and never reaches keys.
    """

    def __init__(
        self,
        credential: _ParsedCredential,
        *,
        on_demand: Callable[[bytes], bytes] | None = None,
    ) -> None:
        super().__init__(
            signing_cert=credential.signer_cert,
            cert_registry=SimpleCertificateStore.from_certs(credential.chain),  # type: ignore[no-untyped-call]
            signature_mechanism=credential.mechanism,
            embed_roots=True,
        )
        self._credential = credential
        self._max_len = credential.key_algorithm.max_signature_bytes
        self._values: dict[bytes, bytes] = {}
        self._on_demand = on_demand
        #: every digest that left through this signer (tests assert only hashes cross)
        self.digests_sent: list[bytes] = []

    def _signed_attr_providers(  # type: ignore[no-untyped-def]
        self,
        data_digest,
        digest_algorithm,
        attr_settings,
        timestamper=None,
        use_cades=False,
        is_pdf_sig=True,
    ):
        # The signing-certificate-v2 value depends on the certificate only: build and encode it
        # once per credential instead of once per signature (it is a noticeable share of the
        # asn1crypto work of every CMS).
        for provider in super()._signed_attr_providers(
            data_digest,
            digest_algorithm,
            attr_settings,
            timestamper=timestamper,
            use_cades=use_cades,
            is_pdf_sig=is_pdf_sig,
        ):
            if isinstance(provider, SigningCertificateV2Provider):
                yield _CachedSigningCertificateV2(self._credential)
            else:
                yield provider

    def provide(self, digest: bytes, signature: bytes) -> None:
        self._values[digest] = signature

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:
            return bytes(self._max_len)
        digest = hashlib.new(digest_algorithm, data).digest()
        value = self._values.pop(digest, None)
        if value is not None:
            return value
        if self._on_demand is None:
            raise FailedPrecondition(SIGNATURE_MISSING, "no authorised signature for this digest")
        self.digests_sent.append(digest)
        return self._on_demand(digest)


class _CachedSigningCertificateV2(SigningCertificateV2Provider):
    def __init__(self, credential: _ParsedCredential) -> None:
        super().__init__(credential.signer_cert)
        self._credential = credential

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return self._credential.signing_certificate_v2()


@dataclass(frozen=True)
class _ParsedCredential:
    credential_id: str
    signer_cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key_algorithm: KeyAlgorithm
    mechanism: algos.SignedDigestAlgorithm
    chain_bytes: int
    #: ``TH-JUR:<number>`` of an agency's e-seal certificate; empty for anyone else's
    seal_agency: str = ""
    _cache: dict[str, bytes] = field(default_factory=dict, compare=False)

    def signing_certificate_v2(self) -> tsp.SigningCertificateV2:
        """RFC 5035 ESS signing-certificate-v2 for the signer certificate, encoded once; each
        signature gets a fresh, unparsed object over the same DER (a ``copy()`` of the parsed
        value deep-copies its whole tree)."""
        der = self._cache.get("scv2")
        if der is None:
            der = as_signing_certificate_v2(self.signer_cert).dump()
            self._cache["scv2"] = der
        return tsp.SigningCertificateV2.load(der)

    @classmethod
    def parse(cls, credential: SigningCredential) -> _ParsedCredential:
        chain = tuple(x509.Certificate.load(der) for der in credential.certificate_chain)
        if not chain:
            raise FailedPrecondition("CREDENTIAL_WITHOUT_CERTIFICATE", "credential has no chain")
        mech = "sha256_ecdsa" if credential.key_algorithm.is_ec else "sha256_rsa"
        subject = parse_subject(
            crypto_x509.load_der_x509_certificate(credential.certificate_chain[0]).subject
        )
        return cls(
            credential_id=credential.credential_id,
            signer_cert=chain[0],
            chain=chain,
            key_algorithm=credential.key_algorithm,
            mechanism=algos.SignedDigestAlgorithm({"algorithm": mech}),
            chain_bytes=sum(len(der) for der in credential.certificate_chain),
            seal_agency=(
                f"TH-JUR:{subject.number}"
                if credential.electronic_seal and subject.namespace == "TH-JUR"
                else ""
            ),
        )


@dataclass
class _Prepared:
    """One document between preparation and signature (mutable while it moves on)."""

    reference: str
    field_name: str
    tbs: PdfTBSDocument
    digest: PreparedByteRangeDigest
    output: BinaryIO
    signed_attrs: object
    attrs_digest: bytes
    signing_time: datetime
    reservation: ReservedDocumentId | None
    registration: RegistrationSpec | None
    #: what the signed document will add to a batch's answer, at most (bytes)
    answer_bytes: int = 0
    error: EgovError | None = None
    result: SignedDocument | None = field(default=None)


class PdfSigningService:
    """Signs PDFs through the keys port; registers them through the registry port.

    ``timestamper`` is the keys service's TSA (RFC 3161 over HTTP) and is needed for B-T and
    above; ``validation_context_factory`` builds the context whose OCSP/CRL fetches (our own
    services only) fill the DSS for B-LT and B-LTA. Parsed credentials are cached for
    ``credential_ttl_seconds``. ``time_left``: seconds left of the caller's deadline (None:
    none), by default the deadline of the gRPC call being served.
    """

    def __init__(
        self,
        keys: KeysPort,
        *,
        registry: RegistryPort | None = None,
        timestamper: TimeStamper | None = None,
        validation_context_factory: Callable[[], ValidationContext] | None = None,
        limits: DocumentLimits | None = None,
        clock: Clock | None = None,
        font_path: str | None = None,
        credential_ttl_seconds: float = 60.0,
        timestamp_reserve_bytes: int = 12_000,
        time_left: Callable[[], float | None] = deadlines.remaining,
    ) -> None:
        self._keys = keys
        self._registry = registry
        self._timestamper = timestamper
        self._vc_factory = validation_context_factory
        self._limits = limits or DocumentLimits()
        self._clock = clock or SystemClock()
        self._font_path = font_path
        self._ttl = credential_ttl_seconds
        self._ts_reserve = timestamp_reserve_bytes
        self._credentials: dict[str, tuple[float, _ParsedCredential]] = {}
        self._time_left = time_left
        #: when the time-stamp authority last answered signing's own check (monotonic seconds)
        self._tsa_answered_at: float | None = None

    # -- public API ---------------------------------------------------------------------------

    def sign(
        self, pdf: PdfSource, options: SignOptions, *, registry: RegistryPort | None = None
    ) -> SignedDocument:
        """Sign one PDF. Raises EgovError (bad input, keys refusal, TSA/OCSP unavailable).

        A stream ``pdf`` (readable, writable, seekable) is signed in place and comes back as the
        result's ``document``. ``registry`` overrides the configured one for this call (e.g.
        acting with the caller's token).
        """
        outcome = self.sign_batch(
            [BatchItem("", pdf, options.registration)], options, registry=registry
        )[0]
        if outcome.error is not None:
            raise outcome.error
        assert outcome.signed is not None
        return outcome.signed

    def sign_batch(
        self,
        items: Sequence[BatchItem],
        options: SignOptions,
        *,
        registry: RegistryPort | None = None,
        max_answer_bytes: int | None = None,
    ) -> list[DocumentOutcome]:
        """Sign several PDFs under one authorisation; results in input order.

        A document that cannot be prepared fails alone. Errors of Authorize/SignHash concern
        every document and are raised, and so are DEADLINE_EXCEEDED SIGNING_DEADLINE_EXCEEDED
        (the caller's deadline passed before something was committed) and, with
        ``max_answer_bytes`` (what one answer may hold: the signed PDFs and
        :data:`ANSWER_BYTES_PER_DOCUMENT` per document), INVALID_ARGUMENT BATCH_TOO_LARGE
        before anything is authorised, signed or registered.
        """
        return aio.run(
            self._sign_batch(items, options, registry or self._registry, max_answer_bytes)
        )

    # -- the flow -----------------------------------------------------------------------------

    async def _sign_batch(
        self,
        items: Sequence[BatchItem],
        options: SignOptions,
        registry: RegistryPort | None,
        max_answer_bytes: int | None = None,
    ) -> list[DocumentOutcome]:
        self._check_time("anything was done")
        _check_options(options)
        credential = self._credential(options.credential_id)
        self._check_level(options.level)
        if max_answer_bytes is not None:
            # at least the documents and their signatures' room: refused before any reservation
            least = [
                stream_size(as_stream(item.pdf))
                + self._bytes_reserved(credential, options.level)
                + ANSWER_BYTES_PER_DOCUMENT
                for item in items
            ]
            _check_answer_size(least, max_answer_bytes)
        if options.level is not Level.B_B:
            await self._check_tsa()
        if options.registry_on_own_authority and any(
            _registers_for_seal_agency(item.registration, credential) for item in items
        ):
            self._check_caller_authority(options)
        signer = RemoteKeySigner(credential)
        prepared: list[_Prepared | DocumentOutcome] = []
        idempotency_keys: set[str] = set()
        for item in items:
            try:
                if item.registration is not None:
                    # a second document under one key could only be refused by the registry,
                    # after its signature was made: refuse it before
                    key = item.registration.idempotency_key
                    if key in idempotency_keys:
                        raise InvalidArgument(
                            IDEMPOTENCY_KEY_REPEATED,
                            "another document of this batch has the same idempotency key",
                        )
                    idempotency_keys.add(key)
                prepared.append(await self._prepare(item, options, credential, signer, registry))
            except DeadlineExceeded:
                raise
            except EgovError as err:
                prepared.append(DocumentOutcome(item.client_reference, error=err))
        ready = [p for p in prepared if isinstance(p, _Prepared)]
        if ready and max_answer_bytes is not None:
            _check_answer_size(
                [
                    p.answer_bytes
                    if isinstance(p, _Prepared)
                    else ANSWER_BYTES_PER_DOCUMENT + len(p.client_reference)
                    for p in prepared
                ],
                max_answer_bytes,
            )
        if ready:
            hashes = [p.attrs_digest for p in ready]
            try:
                self._check_time("the signature was authorised")
                sad = self._keys.authorize(
                    credential.credential_id,
                    hashes,
                    hash_algorithm=_HASH,
                    authorization_proof=options.authorization_proof,
                    description=options.description or f"{len(hashes)} PDF signature(s)",
                )
                # the SAD is not spent when the caller is gone by now
                self._check_time("the signature was made")
                values = self._keys.sign_hash(
                    credential.credential_id,
                    sad,
                    hashes,
                    hash_algorithm=_HASH,
                    key_algorithm=credential.key_algorithm,
                )
            except DeadlineExceeded:
                raise
            except EgovError:
                # keys decides (revoked, renewed, ...): ask it for the credential again next time
                self._credentials.pop(credential.credential_id, None)
                raise
            if len(values) != len(hashes):
                raise FailedPrecondition(SIGNATURE_MISSING, "keys returned too few signatures")
            signer.digests_sent.extend(hashes)
            for digest, value in zip(hashes, values, strict=True):
                signer.provide(digest, value)
            for p in ready:
                try:
                    p.result = await self._finish(p, options, credential, registry)
                except DeadlineExceeded:
                    raise
                except EgovError as err:
                    p.error = err
        outcomes: list[DocumentOutcome] = []
        for entry in prepared:
            if isinstance(entry, DocumentOutcome):
                outcomes.append(entry)
            else:
                outcomes.append(
                    DocumentOutcome(entry.reference, signed=entry.result, error=entry.error)
                )
        return outcomes

    def _check_time(self, before: str) -> None:
        """Raises DEADLINE_EXCEEDED SIGNING_DEADLINE_EXCEEDED once the caller's deadline has
        passed: an answer could no longer reach it, so nothing more is committed for it."""
        left = self._time_left()
        if left is not None and left <= 0:
            raise DeadlineExceeded(
                SIGNING_DEADLINE_EXCEEDED, f"the caller's deadline passed before {before}"
            )

    async def _check_tsa(self) -> None:
        """The time-stamp authority answers, before keys is asked (a B-T signature whose
        time-stamp fails afterwards has spent the owner's authorisation for nothing). pyHanko's
        own check (a first "dummy" time-stamp, B-LT and B-LTA only) happens once per process;
        this one whenever the TSA has not answered it for :data:`TSA_CHECK_SECONDS`.

        Raises UNAVAILABLE TSA_UNAVAILABLE."""
        assert self._timestamper is not None  # _check_level
        now = time.monotonic()
        if self._tsa_answered_at is not None and now - self._tsa_answered_at < TSA_CHECK_SECONDS:
            return
        try:
            await self._timestamper.async_timestamp(
                hashlib.sha256(b"egov-trust signing: is the TSA up?").digest(), _HASH
            )
        except Exception as err:
            self._tsa_answered_at = None
            raise Unavailable(
                TSA_UNAVAILABLE, f"the time-stamp authority failed: {type(err).__name__}"
            ) from err
        self._tsa_answered_at = time.monotonic()

    def _check_caller_authority(self, options: SignOptions) -> None:
        """Keys decides whether the caller (its authorisation proof) speaks for the credential's
        owner, here an agency's e-seal, before signing lends its own registry authority (which
        covers any agency) to a reservation for that agency: a reservation under a caller's
        idempotency key answers with the id of the document registered under it, which the
        registry shows only to the agency's issuers. The SAD is for a hash of no document and
        is never used. Raises keys' refusal (e.g. UNAUTHENTICATED PROOF_MISSING)."""
        self._check_time("the caller's authority was checked")
        check = hashlib.sha256(
            b"egov-trust signing: authority check " + secrets.token_bytes(16)
        ).digest()
        try:
            self._keys.authorize(
                options.credential_id,
                [check],
                hash_algorithm=_HASH,
                authorization_proof=options.authorization_proof,
                description=_AUTHORITY_CHECK_DESCRIPTION,
            )
        except EgovError:
            self._credentials.pop(options.credential_id, None)
            raise

    def _check_level(self, level: Level) -> None:
        if level is not Level.B_B and self._timestamper is None:
            raise FailedPrecondition(TSA_UNAVAILABLE, f"{level} needs a time-stamp authority")
        if level in (Level.B_LT, Level.B_LTA) and self._vc_factory is None:
            raise FailedPrecondition(
                REVOCATION_UNAVAILABLE, f"{level} needs revocation information"
            )

    def _credential(self, credential_id: str) -> _ParsedCredential:
        now = time.monotonic()
        cached = self._credentials.get(credential_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        parsed = _ParsedCredential.parse(self._keys.get_credential(credential_id))
        self._credentials[credential_id] = (now, parsed)
        return parsed

    def _reserve(
        self,
        spec: RegistrationSpec | None,
        registry: RegistryPort | None,
        options: SignOptions,
        credential: _ParsedCredential,
    ) -> ReservedDocumentId | None:
        if spec is None:
            return None
        if registry is None:
            raise FailedPrecondition("REGISTRY_NOT_CONFIGURED", "no registry to register in")
        if options.registry_on_own_authority and not _registers_for_seal_agency(spec, credential):
            # signing's own authority at the registry covers any agency; without the caller's
            # token it is used only for the agency whose e-seal signs the document (and only
            # once keys has accepted the caller's proof for that e-seal: _sign_batch)
            raise PermissionDenied(
                ISSUER_NOT_SEAL_OWNER,
                "without the issuer's token a document is registered only for the agency "
                "whose e-seal signs it",
            )
        self._check_time("a document id was reserved")
        return registry.reserve_document_id(spec)

    async def _prepare(
        self,
        item: BatchItem,
        options: SignOptions,
        credential: _ParsedCredential,
        signer: RemoteKeySigner,
        registry: RegistryPort | None,
    ) -> _Prepared:
        if options.stamp is not None and options.stamp.include_qr_code and not item.registration:
            raise InvalidArgument(
                QR_CODE_NEEDS_REGISTRATION,
                "the stamp's QR code points at the registry entry: ask for registration too",
            )
        reader = open_untrusted_pdf(item.pdf, self._limits)
        stamp = options.stamp
        # Everything the document alone decides is refused here, before a document id is
        # reserved for it (a refusal after the reservation would leave it unused).
        try:
            field_name, existing = _choose_field(reader, options.field_name)
            new_visible_field = stamp is not None and not existing
            _check_certification(reader, options, new_visible_field=new_visible_field)
            stamp_page = None if stamp is None or existing else _stamp_page(reader, stamp)
        except EgovError:
            raise
        except PdfDecodeLimitError as err:
            raise decompression_refused(err) from err
        except Exception as err:
            raise _signing_failure(err, credential) from err
        reservation = self._reserve(item.registration, registry, options, credential)
        signing_time = self._clock.now()
        level = options.level
        meta = PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm=_HASH,
            reason=options.reason or None,
            location=options.location or None,
            contact_info=options.contact_info or None,
            subfilter=pdf_fields.SigSeedSubFilter.PADES,
            certify=options.certification is not None,
            docmdp_permissions=pdf_fields.MDPPerm(options.certification or 2),
            embed_validation_info=level in (Level.B_LT, Level.B_LTA),
            use_pades_lta=level is Level.B_LTA,
            validation_context=(
                self._vc_factory()
                if self._vc_factory and level in (Level.B_LT, Level.B_LTA)
                else None
            ),
        )
        stamp_style_obj = None
        text_params: dict[str, str] | None = None
        new_field = None
        if stamp is not None:
            subject = credential.signer_cert.subject.native
            lines = stamp_lines(
                signer=pick_for_language(name_values(subject, "common_name"), stamp.language),
                organisation=pick_for_language(
                    name_values(subject, "organization_name"), stamp.language
                ),
                when=signing_time,
                reason=options.reason,
                language=stamp.language,
            )
            with_qr = reservation is not None and stamp.include_qr_code
            stamp_style_obj = stamp_style(
                lines, language=stamp.language, with_qr=with_qr, font_path=self._font_path
            )
            if with_qr:
                assert reservation is not None
                text_params = {"url": reservation.verification_url}
            if stamp_page is not None:
                new_field = pdf_fields.SigFieldSpec(
                    sig_field_name=field_name,
                    on_page=stamp_page,
                    box=_int_box(stamp.box or _default_box(reader, stamp_page)),
                )
        pdf_signer = PdfSigner(
            meta,
            signer=signer,
            timestamper=self._timestamper if level is not Level.B_B else None,
            stamp_style=stamp_style_obj,
            new_field_spec=new_field,
        )
        try:
            # reuse the strict, limit-checked parse: the document is read once
            writer = IncrementalPdfFileWriter.from_reader(reader)
            session = pdf_signer.init_signing_session(writer, existing_fields_only=existing)
            validation_info = await session.perform_presign_validation(writer)
            tbs = session.prepare_tbs_document(
                validation_info=validation_info,
                bytes_reserved=self._bytes_reserved(credential, level),
                appearance_text_params=text_params,
            )
            # appended to the stream the document was read from: no second copy of the file
            digest, output = tbs.digest_tbs_document(in_place=True, chunk_size=_IO_CHUNK)
            signed_attrs = await signer.signed_attrs(
                digest.document_digest,
                _HASH,
                attr_settings=PdfCMSSignedAttributes(
                    signing_time=session.system_time,
                    adobe_revinfo_attr=(
                        None if validation_info is None else validation_info.adobe_revinfo_attr
                    ),
                    cades_signed_attrs=meta.cades_signed_attr_spec,
                ),
                use_pades=True,
                timestamper=tbs.timestamper,
                dry_run=False,
            )
            after_signing = await self._after_signing_bytes(level, validation_info)
        except EgovError:
            raise
        except Exception as err:
            raise _signing_failure(err, credential) from err
        answer_bytes = (
            stream_size(cast(BinaryIO, output))
            + after_signing
            + ANSWER_BYTES_PER_DOCUMENT
            + len(item.client_reference.encode())
        )
        return _Prepared(
            reference=item.client_reference,
            field_name=field_name,
            tbs=tbs,
            digest=digest,
            output=cast(BinaryIO, output),
            signed_attrs=signed_attrs,
            attrs_digest=hashlib.sha256(signed_attrs.dump()).digest(),
            signing_time=session.system_time,
            reservation=reservation,
            registration=item.registration,
            answer_bytes=answer_bytes,
        )

    async def _after_signing_bytes(self, level: Level, validation_info: object) -> int:
        """What is appended to a prepared document after its signature, at most: the DSS
        (every certificate, OCSP answer and CRL collected for it, B-LT and B-LTA) and the
        document time-stamp (B-LTA: pyHanko reserves 1.5 times the size of the TSA's token,
        hex-encoded, measured on the token it keeps from its first request)."""
        if level not in (Level.B_LT, Level.B_LTA):
            return 0
        material = 0
        if validation_info is not None:
            info = cast(PreSignValidationStatus, validation_info)
            certificates = {
                cert.sha256: len(cert.dump())
                for path in info.validation_paths
                for cert in path.iter_certs(include_root=True)
            }
            material = (
                sum(certificates.values())
                + sum(len(answer.dump()) for answer in info.ocsps_to_embed)
                + sum(len(crl.dump()) for crl in info.crls_to_embed)
            )
        # object headers, the DSS and its arrays, a cross-reference section
        extra = material + 8192
        if level is Level.B_LTA:
            assert self._timestamper is not None  # _check_level
            token = await self._timestamper.async_dummy_response(_HASH)
            extra += 3 * len(token.dump()) + 8192
        return extra

    def _bytes_reserved(self, credential: _ParsedCredential, level: Level) -> int:
        # signed attributes (~1 KiB incl. signing-certificate-v2) + chain + signature value,
        # plus the signature time-stamp token (with its TSA chain) from B-T on
        reserve = 2048 + credential.chain_bytes + credential.key_algorithm.max_signature_bytes
        if level is not Level.B_B:
            reserve += self._ts_reserve
        return 2 * reserve  # counted in hex digits: the CMS is a hex string in /Contents

    async def _finish(
        self,
        p: _Prepared,
        options: SignOptions,
        credential: _ParsedCredential,
        registry: RegistryPort | None,
    ) -> SignedDocument:
        try:
            signer = p.tbs.signer
            cms_obj = await signer.async_sign_prescribed_attributes(
                _HASH,
                p.signed_attrs,
                timestamper=p.tbs.timestamper,
            )
            sig_contents = p.tbs.cms_writer.send(cms_obj)
            post = PdfPostSignatureDocument(
                sig_contents,
                post_sign_instr=p.tbs.post_sign_instructions,
                validation_context=p.tbs.validation_context,
            )
            await post.post_signature_processing(p.output, chunk_size=_IO_CHUNK)
        except EgovError:
            raise
        except Exception as err:
            raise _signing_failure(err, credential) from err
        scan = scan_document(p.output)
        sha = scan.sha256
        status = RegistrationStatus.NOT_REQUESTED
        reg_error: EgovError | None = None
        if p.reservation is not None and p.registration is not None:
            assert registry is not None
            # A document registered for a caller who is gone would be issued without anyone
            # holding it (its PDF is kept nowhere): the reserved id stays unused instead.
            self._check_time("the document was registered")
            try:
                registry.register(
                    p.registration,
                    document_id=p.reservation.document_id,
                    sha256=sha,
                    signer_certificate_sha256=[
                        hashlib.sha256(credential.signer_cert.dump()).digest()
                    ],
                )
                status = RegistrationStatus.REGISTERED
            except EgovError as err:
                status, reg_error = RegistrationStatus.UNREGISTERED, err
            except Exception as err:  # the PDF is signed: never lose it over registration
                status = RegistrationStatus.UNREGISTERED
                reg_error = FailedPrecondition("REGISTRATION_FAILED", type(err).__name__)
        return SignedDocument(
            document=p.output,
            size_bytes=scan.size,
            sha256=sha,
            level=options.level,
            field_name=p.field_name,
            signing_time=p.signing_time,
            registration_status=status,
            document_id=p.reservation.document_id if p.reservation else "",
            verification_url=p.reservation.verification_url if p.reservation else "",
            registration_error=reg_error,
        )


def _check_options(options: SignOptions) -> None:
    """The caller's names and texts and the stamp's box, before anything else is done.

    Raises InvalidArgument FIELD_NAME_INVALID, SIGNATURE_TEXT_INVALID, REASON_TOO_LONG,
    LOCATION_TOO_LONG, CONTACT_INFO_TOO_LONG or STAMP_BOX_INVALID.
    """
    name = options.field_name
    if (
        len(name) > MAX_FIELD_NAME_CHARS
        or _has_control_characters(name)
        or _has_format_characters(name, allowed=frozenset())
    ):
        raise InvalidArgument(
            FIELD_NAME_INVALID,
            "the field name is too long or holds control or format (e.g. bidi) characters",
            field_violations=(
                FieldViolation(
                    "options.field_name",
                    f"at most {MAX_FIELD_NAME_CHARS} characters, no control or format characters",
                ),
            ),
        )
    for field_name, too_long in _SIGNATURE_TEXTS:
        text: str = getattr(options, field_name)
        if len(text) > MAX_SIGNATURE_TEXT_CHARS:
            raise InvalidArgument(
                too_long,
                f"{field_name} is longer than {MAX_SIGNATURE_TEXT_CHARS} characters",
                field_violations=(
                    FieldViolation(
                        f"options.{field_name}", f"at most {MAX_SIGNATURE_TEXT_CHARS} characters"
                    ),
                ),
                metadata={"max_characters": str(MAX_SIGNATURE_TEXT_CHARS)},
            )
        # A line break would put a line of the caller's choosing into the visible stamp; a
        # bidi control (U+202E, U+2066, ...) would show the text in another order than it is
        # stored and extracted.
        if _has_control_characters(text) or _has_format_characters(
            text, allowed=_ALLOWED_FORMAT_CHARACTERS
        ):
            raise InvalidArgument(
                SIGNATURE_TEXT_INVALID,
                f"{field_name} holds line breaks, control or format (e.g. bidi) characters",
                field_violations=(
                    FieldViolation(
                        f"options.{field_name}",
                        "no line breaks, control or format characters (the zero-width space "
                        "excepted)",
                    ),
                ),
            )
    box = options.stamp.box if options.stamp is not None else None
    if box is not None and not (
        all(math.isfinite(v) for v in box) and box[0] < box[2] and box[1] < box[3]
    ):
        raise InvalidArgument(
            STAMP_BOX_INVALID,
            "the stamp's box needs finite coordinates and an area",
            field_violations=(
                FieldViolation("options.stamp.box", "finite numbers with x1 < x2 and y1 < y2"),
            ),
        )


def _has_control_characters(text: str) -> bool:
    # Cc: C0/C1 controls (NUL, CR, LF, ESC, ...); Zl/Zp: Unicode line and paragraph separators.
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def _has_format_characters(text: str, *, allowed: frozenset[str]) -> bool:
    # Cf: bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), marks
    # (U+200E/F), zero-width joiners, the BOM, soft hyphen, ...: invisible, and the bidi ones
    # reorder what a viewer shows.
    return any(unicodedata.category(ch) == "Cf" and ch not in allowed for ch in text)


def _registers_for_seal_agency(
    spec: RegistrationSpec | None, credential: _ParsedCredential
) -> bool:
    """Whether ``spec`` registers for the agency whose e-seal ``credential`` is."""
    if spec is None or not credential.seal_agency:
        return False
    return f"{spec.issuer.namespace}:{spec.issuer.value}" == credential.seal_agency


def _check_answer_size(document_bytes: Sequence[int], max_answer_bytes: int) -> None:
    """Raises INVALID_ARGUMENT BATCH_TOO_LARGE when the documents' answers, added up, need more
    than ``max_answer_bytes``: gRPC would refuse to send that answer after everything in it was
    signed and registered. The message says how to split the batch."""
    estimate = sum(document_bytes)
    if estimate <= max_answer_bytes:
        return
    calls = max(2, math.ceil(estimate / max_answer_bytes))
    per_call = max(1, len(document_bytes) // calls)
    largest = max(document_bytes, default=0)
    alone = (
        "; a document whose signed PDF alone is too large for one answer is signed with "
        "SignDocument, which streams it"
        if largest > max_answer_bytes
        else ""
    )
    raise InvalidArgument(
        BATCH_TOO_LARGE,
        f"the signed documents would make an answer of about {estimate} bytes, more than the "
        f"{max_answer_bytes} one answer may hold: split the batch over at least {calls} calls "
        f"(about {per_call} documents each){alone}; nothing was signed or registered",
        field_violations=(
            FieldViolation(
                "documents", f"the signed documents of one call in at most {max_answer_bytes} bytes"
            ),
        ),
        metadata={
            "max_answer_bytes": str(max_answer_bytes),
            "estimated_answer_bytes": str(estimate),
            "min_calls": str(calls),
        },
    )


def _check_certification(
    reader: PdfFileReader, options: SignOptions, *, new_visible_field: bool
) -> None:
    """What a certification signature already on the document (its DocMDP permission, ISO
    32000-1 12.8.2.2) lets this signature do, and whether this one may certify. pyHanko and
    our own verifier would find the same only after the signature is made.

    Raises FAILED_PRECONDITION DOCUMENT_CERTIFIED_NO_CHANGES (P=1), DOCUMENT_CERTIFIED_NO_NEW_STAMP
    (P=2 or 3 and a visible stamp in a new field: its widget annotation on the page is a change
    pyHanko's difference analysis refuses after a certification; an existing empty field, or an
    invisible signature, is form filling and allowed) or CERTIFICATION_NOT_FIRST.
    """
    certification = read_certification_data(reader)
    if certification is not None:
        permission = certification.permission
        if permission is pdf_fields.MDPPerm.NO_CHANGES:
            raise FailedPrecondition(
                DOCUMENT_CERTIFIED_NO_CHANGES,
                "a certification signature on this PDF allows no further signatures (DocMDP P=1)",
            )
        if new_visible_field:
            raise FailedPrecondition(
                DOCUMENT_CERTIFIED_NO_NEW_STAMP,
                f"a certification signature on this PDF (DocMDP P={permission.value}) allows "
                "signing an existing empty signature field or an invisible signature, not a "
                "visible stamp in a new field: name an empty field of the form, or leave out "
                "the stamp",
            )
    if options.certification is not None and any(
        value is not None for _name, value, _ref in pdf_fields.enumerate_sig_fields(reader)
    ):
        raise FailedPrecondition(
            CERTIFICATION_NOT_FIRST,
            "a certification signature must be the first signature of a document; this PDF is "
            "signed already (sign it with an approval signature instead)",
        )


def _stamp_page(reader: PdfFileReader, stamp: StampSpec) -> int:
    """The 0-based page of a new stamp. Raises INVALID_ARGUMENT STAMP_PAGE_OUT_OF_RANGE."""
    pages = int(reader.root["/Pages"]["/Count"])
    page = (stamp.page or pages) - 1
    if not 0 <= page < pages:
        raise InvalidArgument(
            STAMP_PAGE_OUT_OF_RANGE,
            f"no page {stamp.page} for the stamp: the document has {pages}",
            field_violations=(FieldViolation("options.stamp.page", f"0 or 1 to {pages}"),),
        )
    return page


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and what it came from (``raise ... from``, an exception raised while handling
    another, or one passed along as an argument, as pyHanko does), nearest first."""
    seen: set[int] = set()
    todo = [err]
    while todo and len(seen) < 16:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(a for a in current.args if isinstance(a, BaseException))


def _signing_failure(err: Exception, credential: _ParsedCredential) -> EgovError:
    """pyHanko's or the certificate validator's exception as the error the caller gets, by its
    type (a message's wording is no contract). A revoked or expired signer certificate is what
    keys would say of the credential (CREDENTIAL_REVOKED, ISSUER_REVOKED, CREDENTIAL_EXPIRED),
    whatever the level that found it: retrying does not help. Revocation data or a time-stamp
    that could not be had is UNAVAILABLE: retrying may."""
    text = f"{type(err).__name__}: {str(err)[:200]}"
    causes = list(_causes(err))
    if any(isinstance(e, TimestampRequestError) for e in causes):
        return Unavailable(TSA_UNAVAILABLE, "the time-stamp authority failed: " + text)
    signer_sha256 = credential.signer_cert.sha256
    # pyHanko wraps the signer certificate's validation failure in a SigningError ``from`` it
    # (and that of a time-stamp already in the document in a SigningError *with* it); the
    # TSA's own certificate's fails bare
    signer_failure = isinstance(err, SigningError) and isinstance(
        err.__cause__, PathError | PathValidationError
    )
    for cause in causes:
        if not isinstance(cause, PathError | PathValidationError):
            continue
        # a responder's or a CRL issuer's certificate, checked for the revocation data of a
        # path: is_side_validation (its original path is the signer's)
        side = isinstance(cause, PathValidationError) and cause.is_side_validation
        leaf = cause.original_path.leaf if isinstance(cause, PathValidationError) else None
        signers = signer_failure or getattr(leaf, "sha256", None) == signer_sha256
        if signers and not side:
            if isinstance(cause, PathValidationError):
                return _signer_certificate_failure(cause, text)
            return FailedPrecondition(
                SIGNER_CERTIFICATE_INVALID,
                "the signer's certificate has no path to a trusted root: " + text,
            )
        if side or isinstance(cause, InsufficientRevinfoError):
            return Unavailable(REVOCATION_UNAVAILABLE, "revocation information failed: " + text)
        if isinstance(err, SigningError):
            return InvalidArgument(
                PDF_CANNOT_BE_SIGNED, "a time-stamp in the document does not validate: " + text
            )
        return Unavailable(
            TSA_UNAVAILABLE,
            "the time-stamp authority's certificate could not be validated: " + text,
        )
    if any(
        isinstance(e, InsufficientRevinfoError | OCSPValidationError | CRLValidationError)
        for e in causes
    ):
        return Unavailable(REVOCATION_UNAVAILABLE, "revocation information failed: " + text)
    return InvalidArgument(PDF_CANNOT_BE_SIGNED, text)


def _signer_certificate_failure(cause: PathValidationError, text: str) -> EgovError:
    if isinstance(cause, RevokedError):
        revoked_at = cause.revocation_dt.isoformat()
        if cause.is_ee_cert:
            return FailedPrecondition(
                CREDENTIAL_REVOKED,
                f"the credential's certificate was revoked at {revoked_at}",
                metadata={"revoked_at": revoked_at},
            )
        return FailedPrecondition(
            ISSUER_REVOKED,
            f"a CA certificate above the credential's was revoked at {revoked_at}",
            metadata={"revoked_at": revoked_at},
        )
    if isinstance(cause, InsufficientRevinfoError):
        return Unavailable(
            REVOCATION_UNAVAILABLE, "revocation information for the signer failed: " + text
        )
    if isinstance(cause, ExpiredError) and cause.is_ee_cert:
        return FailedPrecondition(
            CREDENTIAL_EXPIRED, "the credential's certificate has expired: " + text
        )
    return FailedPrecondition(
        SIGNER_CERTIFICATE_INVALID, "the signer's certificate does not validate: " + text
    )


def _choose_field(reader: PdfFileReader, requested: str) -> tuple[str, bool]:
    """(field name, whether an empty signature field of that name exists already).

    The default name ``Signature<n>`` is one no field of the form has, of whatever type.
    Raises FAILED_PRECONDITION FIELD_ALREADY_SIGNED or FIELD_NOT_A_SIGNATURE_FIELD.
    """
    signatures: dict[str, bool] = {}
    for name, value, _ref in pdf_fields.enumerate_sig_fields(reader):
        signatures[name] = value is not None
    names = _form_field_names(reader)
    if requested:
        if signatures.get(requested):
            raise FailedPrecondition(FIELD_ALREADY_SIGNED, f"field {requested!r} is signed")
        if requested not in signatures and requested in names:
            raise FailedPrecondition(
                FIELD_NOT_A_SIGNATURE_FIELD,
                f"the form's field {requested!r} is not a signature field: name another",
            )
        return requested, requested in signatures
    taken = names | signatures.keys()
    n = len(signatures) + 1
    while f"Signature{n}" in taken:
        n += 1
    return f"Signature{n}", False


def _form_field_names(reader: PdfFileReader) -> set[str]:
    """The fully qualified names (``parent.child``, ISO 32000-1 12.7.3.2) of every field of the
    document's form, terminal or not; each field object is visited once."""
    try:
        fields = reader.root["/AcroForm"]["/Fields"]
    except (KeyError, TypeError):
        return set()
    names: set[str] = set()
    seen: set[tuple[int, int]] = set()
    todo: list[tuple[object, str]] = [(ref, "") for ref in _array(fields)]
    while todo:
        ref, parent = todo.pop()
        if not isinstance(ref, generic.IndirectObject):
            continue
        key = (ref.idnum, ref.generation)
        if key in seen:
            continue
        seen.add(key)
        field = ref.get_object()  # type: ignore[no-untyped-call]
        if not isinstance(field, generic.DictionaryObject):
            continue
        title = field.get("/T")
        if title is None:  # a widget of its parent field, no field of its own
            continue
        name = f"{parent}.{title}" if parent else str(title)
        names.add(name)
        todo.extend((kid, name) for kid in _array(field.get("/Kids")))
    return names


def _array(value: object) -> list[object]:
    if isinstance(value, generic.IndirectObject):
        value = value.get_object()  # type: ignore[no-untyped-call]
    return list(value) if isinstance(value, generic.ArrayObject) else []


def _int_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    return (int(box[0]), int(box[1]), int(box[2]), int(box[3]))


def _default_box(reader: PdfFileReader, page: int) -> tuple[float, float, float, float]:
    """260 x 90 pt at the bottom right, 36 pt from the edges."""
    try:
        page_ref, _ = reader.find_page_for_modification(page)  # type: ignore[no-untyped-call]
        box = [float(v) for v in page_ref.get_object()["/MediaBox"]]
    except Exception:  # inherited or odd MediaBox: assume A4
        box = [0.0, 0.0, 595.0, 842.0]
    right = box[2] - 36
    return (right - 260, box[1] + 36, right, box[1] + 126)
