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
the others go on.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import math
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, cast

from asn1crypto import algos, tsp, x509
from cryptography import x509 as crypto_x509
from egov_common.clock import Clock, SystemClock
from egov_common.errors import (
    EgovError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from egov_pki.profiles import parse_subject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfDecodeLimitError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields as pdf_fields
from pyhanko.sign.attributes import SigningCertificateV2Provider
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.signers.pdf_signer import (
    PdfPostSignatureDocument,
    PdfSignatureMetadata,
    PdfSigner,
    PdfTBSDocument,
)
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from . import aio
from .pdf_input import (
    DocumentLimits,
    PdfSource,
    decompression_refused,
    open_untrusted_pdf,
    read_all,
    scan_document,
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

#: longest signature field name accepted (it is shown in every validation report)
MAX_FIELD_NAME_CHARS = 128

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
    error: EgovError | None = None
    result: SignedDocument | None = field(default=None)


class PdfSigningService:
    """Signs PDFs through the keys port; registers them through the registry port.

    ``timestamper`` is the keys service's TSA (RFC 3161 over HTTP) and is needed for B-T and
    above; ``validation_context_factory`` builds the context whose OCSP/CRL fetches (our own
    services only) fill the DSS for B-LT and B-LTA. Parsed credentials are cached for
    ``credential_ttl_seconds``.
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
    ) -> list[DocumentOutcome]:
        """Sign several PDFs under one authorisation; results in input order.

        A document that cannot be prepared fails alone. Errors of Authorize/SignHash concern
        every document and are raised.
        """
        return aio.run(self._sign_batch(items, options, registry or self._registry))

    # -- the flow -----------------------------------------------------------------------------

    async def _sign_batch(
        self, items: Sequence[BatchItem], options: SignOptions, registry: RegistryPort | None
    ) -> list[DocumentOutcome]:
        _check_options(options)
        credential = self._credential(options.credential_id)
        self._check_level(options.level)
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
            except EgovError as err:
                prepared.append(DocumentOutcome(item.client_reference, error=err))
        ready = [p for p in prepared if isinstance(p, _Prepared)]
        if ready:
            hashes = [p.attrs_digest for p in ready]
            try:
                sad = self._keys.authorize(
                    credential.credential_id,
                    hashes,
                    hash_algorithm=_HASH,
                    authorization_proof=options.authorization_proof,
                    description=options.description or f"{len(hashes)} PDF signature(s)",
                )
                values = self._keys.sign_hash(
                    credential.credential_id,
                    sad,
                    hashes,
                    hash_algorithm=_HASH,
                    key_algorithm=credential.key_algorithm,
                )
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

    @staticmethod
    def _reserve(
        spec: RegistrationSpec | None,
        registry: RegistryPort | None,
        options: SignOptions,
        credential: _ParsedCredential,
    ) -> ReservedDocumentId | None:
        if spec is None:
            return None
        if registry is None:
            raise FailedPrecondition("REGISTRY_NOT_CONFIGURED", "no registry to register in")
        issuer = f"{spec.issuer.namespace}:{spec.issuer.value}"
        if options.registry_on_own_authority and issuer != credential.seal_agency:
            # signing's own authority at the registry covers any agency; without the caller's
            # token it is used only for the agency whose e-seal signs the document
            raise PermissionDenied(
                ISSUER_NOT_SEAL_OWNER,
                "without the issuer's token a document is registered only for the agency "
                "whose e-seal signs it",
            )
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
        field_name, existing = _choose_field(reader, options.field_name)
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
        stamp = options.stamp
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
            if not existing:
                pages = int(reader.root["/Pages"]["/Count"])
                page = (stamp.page or pages) - 1
                if not 0 <= page < pages:
                    raise InvalidArgument("STAMP_PAGE_OUT_OF_RANGE", "no such page for the stamp")
                new_field = pdf_fields.SigFieldSpec(
                    sig_field_name=field_name,
                    on_page=page,
                    box=_int_box(stamp.box or _default_box(reader, page)),
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
        except EgovError:
            raise
        except PdfDecodeLimitError as err:
            raise decompression_refused(err) from err
        except Exception as err:
            raise _signing_failure(err) from err
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
        )

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
            raise _signing_failure(err) from err
        scan = scan_document(p.output)
        sha = scan.sha256
        status = RegistrationStatus.NOT_REQUESTED
        reg_error: EgovError | None = None
        if p.reservation is not None and p.registration is not None:
            assert registry is not None
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

    Raises InvalidArgument FIELD_NAME_INVALID, SIGNATURE_TEXT_INVALID or STAMP_BOX_INVALID.
    """
    name = options.field_name
    if len(name) > MAX_FIELD_NAME_CHARS or _has_control_characters(name):
        raise InvalidArgument(
            FIELD_NAME_INVALID,
            "the field name is too long or holds control characters",
            field_violations=(
                FieldViolation(
                    "options.field_name",
                    f"at most {MAX_FIELD_NAME_CHARS} characters, no control characters",
                ),
            ),
        )
    for field_name, text in (
        ("reason", options.reason),
        ("location", options.location),
        ("contact_info", options.contact_info),
    ):
        # a line break would put a line of the caller's choosing into the visible stamp
        if _has_control_characters(text):
            raise InvalidArgument(
                SIGNATURE_TEXT_INVALID,
                f"{field_name} holds line breaks or control characters",
                field_violations=(
                    FieldViolation(f"options.{field_name}", "no line breaks or control characters"),
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
    # Format characters (Cf) stay: Thai text uses the zero-width space between words.
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def _signing_failure(err: Exception) -> EgovError:
    text = f"{type(err).__name__}: {str(err)[:200]}"
    lowered = text.lower()
    if "forbids all changes" in lowered:
        return FailedPrecondition(
            "DOCUMENT_CERTIFIED_NO_CHANGES",
            "a certification signature on this PDF allows no further signatures (DocMDP P=1)",
        )
    if "timestamp" in lowered or "time stamp" in lowered or "tsa" in lowered:
        from egov_common.errors import Unavailable

        return Unavailable(TSA_UNAVAILABLE, "the time-stamp authority failed: " + text)
    if "revocation" in lowered or "ocsp" in lowered or "crl" in lowered or "validat" in lowered:
        from egov_common.errors import Unavailable

        return Unavailable(REVOCATION_UNAVAILABLE, "revocation information failed: " + text)
    return InvalidArgument("PDF_CANNOT_BE_SIGNED", text)


def _choose_field(reader: PdfFileReader, requested: str) -> tuple[str, bool]:
    """(field name, whether it exists already). Raises FIELD_ALREADY_SIGNED."""
    existing: dict[str, bool] = {}
    for name, value, _ref in pdf_fields.enumerate_sig_fields(reader):
        existing[name] = value is not None
    if requested:
        if existing.get(requested):
            raise FailedPrecondition(FIELD_ALREADY_SIGNED, f"field {requested!r} is signed")
        return requested, requested in existing
    n = len(existing) + 1
    while f"Signature{n}" in existing:
        n += 1
    return f"Signature{n}", False


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
