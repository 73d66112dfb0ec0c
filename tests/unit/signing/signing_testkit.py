"""Test PKI, an in-process keys port, a fake registry and a PDF maker for signing tests
(software keys, tests only). Imported by the unit and integration tests of signing."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from egov_common.errors import Unauthenticated
from egov_signing.domain.ports import (
    KeyAlgorithm,
    RegistrationSpec,
    ReservedDocumentId,
    SignatureActivationData,
    SigningCredential,
)

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SIGNER_CN = "สมชาย ใจดี"
SIGNER_ORG = "ACME จำกัด"
CRL_URL = "http://127.0.0.1:9/crl/root.crl"


def _name(cn: str, org: str = "", serial: str = "", org_id: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "TH")]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if org_id:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, org_id))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if serial:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attrs)


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    eku: x509.ObjectIdentifier | Sequence[x509.ObjectIdentifier] | None = None,
    crl: bool = False,
    eku_critical: bool = True,
    non_repudiation: bool = True,
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        b = b.add_extension(
            x509.KeyUsage(True, non_repudiation, False, False, False, False, False, False, False),
            critical=True,
        )
    if eku is not None:
        purposes = [eku] if isinstance(eku, x509.ObjectIdentifier) else list(eku)
        b = b.add_extension(x509.ExtendedKeyUsage(purposes), critical=eku_critical)
    if crl:
        b = b.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(CRL_URL)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class SigningPki:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey
    signer: x509.Certificate
    tsa_key: rsa.RSAPrivateKey
    tsa: x509.Certificate
    crl: x509.CertificateRevocationList
    #: what keys says the signer's credential is for (its CREDENTIAL_KIND_* name)
    credential_kind: str = "NATURAL_PERSON"

    def der(self, cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.DER)

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def asn1(self, cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.der(cert))

    def timestamper(self):  # type: ignore[no-untyped-def]
        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

        key = asn1_keys.PrivateKeyInfo.load(
            self.tsa_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return DummyTimeStamper(
            tsa_cert=self.asn1(self.tsa), tsa_key=key, certs_to_embed=[self.asn1(self.root)]
        )

    def validation_context(self):  # type: ignore[no-untyped-def]
        from asn1crypto import crl as asn1_crl
        from pyhanko_certvalidator import ValidationContext

        return ValidationContext(
            trust_roots=[self.asn1(self.root)],
            crls=[asn1_crl.CertificateList.load(self.crl.public_bytes(serialization.Encoding.DER))],
            ocsps=[],
            allow_fetching=False,
            revocation_mode="hard-fail",
        )


def make_pki(
    *,
    revoke_signer: bool = False,
    signer_crl: bool = True,
    seal_agency: str = "",
    legal_person: bool = False,
) -> SigningPki:
    """A root, a TSA and a signer: a natural person, or with ``seal_agency`` (a 13-digit
    juristic number) an agency's e-seal (``organizationIdentifier`` ``NTRTH-<number>``); with
    ``legal_person`` too, that juristic person's signature used by a representative instead
    (the same certificate profile, another credential kind)."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Test Root CA", "egov-trust tests")
    root = _cert(root_name, root_key, root_name, root_key, ca=True)
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer_name = (
        _name(SIGNER_ORG, SIGNER_ORG, org_id=f"NTRTH-{seal_agency}")
        if seal_agency
        else _name(SIGNER_CN, SIGNER_ORG, "PNOTH-1234567890121")
    )
    signer = _cert(
        signer_name,
        signer_key,
        root_name,
        root_key,
        ca=False,
        crl=signer_crl,
    )
    # pyHanko's DummyTimeStamper signs with RSA only
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = _cert(
        _name("Test TSA"),
        tsa_key,
        root_name,
        root_key,
        ca=False,
        eku=ExtendedKeyUsageOID.TIME_STAMPING,
        crl=True,
    )
    crl_builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_name)
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=7))
    )
    if revoke_signer:
        crl_builder = crl_builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(signer.serial_number)
            .revocation_date(NOW - dt.timedelta(minutes=30))
            .build()
        )
    crl = crl_builder.sign(root_key, hashes.SHA256())
    kind = "NATURAL_PERSON"
    if seal_agency:
        kind = "LEGAL_PERSON" if legal_person else "ELECTRONIC_SEAL"
    return SigningPki(root_key, root, signer_key, signer, tsa_key, tsa, crl, kind)


@dataclass
class SoftwareKeys:
    """In-process KeysPort: records what crosses it and refuses replayed or foreign SADs."""

    pki: SigningPki
    credential_id: str = "cred-1"
    received: list[tuple[str, object]] = field(default_factory=list)
    _sads: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    _counter: int = 0

    def get_credential(self, credential_id: str) -> SigningCredential:
        self.received.append(("get_credential", credential_id))
        return SigningCredential(
            credential_id,
            (self.pki.der(self.pki.signer), self.pki.der(self.pki.root)),
            KeyAlgorithm.ECDSA_P256,
            electronic_seal=self.pki.credential_kind == "ELECTRONIC_SEAL",
        )

    def authorize(
        self,
        credential_id: str,
        hashes_: Sequence[bytes],
        *,
        hash_algorithm: str,
        authorization_proof: str,
        description: str,
    ) -> SignatureActivationData:
        self.received.append(("authorize", tuple(hashes_)))
        self._counter += 1
        sad = f"sad-{self._counter}"
        self._sads[sad] = tuple(sorted(hashes_))
        return SignatureActivationData(sad)

    def sign_hash(
        self,
        credential_id: str,
        sad: SignatureActivationData,
        hashes_: Sequence[bytes],
        *,
        hash_algorithm: str,
        key_algorithm: KeyAlgorithm,
    ) -> list[bytes]:
        self.received.append(("sign_hash", tuple(hashes_)))
        bound = self._sads.pop(sad.value, None)
        if bound is None:
            raise Unauthenticated("SAD_ALREADY_USED", "SAD unknown or used")
        if bound != tuple(sorted(hashes_)):
            raise Unauthenticated("SAD_OTHER_HASHES", "hashes differ")
        for h in hashes_:
            assert len(h) == hashlib.sha256().digest_size
        return [
            self.pki.signer_key.sign(h, ec.ECDSA(utils.Prehashed(hashes.SHA256()))) for h in hashes_
        ]


@dataclass
class FakeRegistry:
    fail_register: bool = False
    registered: list[tuple[str, bytes]] = field(default_factory=list)
    #: the issuer of every reservation asked for
    reserved: list[str] = field(default_factory=list)
    #: idempotency key -> the document registered under it
    keys: dict[str, str] = field(default_factory=dict)
    _n: int = 0

    def reserve_document_id(self, spec: RegistrationSpec) -> ReservedDocumentId:
        # as the registry: a key it registered a document under is ALREADY_REGISTERED
        done = self.keys.get(spec.idempotency_key)
        if done is not None:
            from egov_common.errors import AlreadyExists

            raise AlreadyExists(
                "ALREADY_REGISTERED", f"{done} is registered under this idempotency key already",
                metadata={"document_id": done},
            )
        self.reserved.append(f"{spec.issuer.namespace}:{spec.issuer.value}")
        self._n += 1
        doc_id = f"DOC-{self._n:04d}"
        return ReservedDocumentId(doc_id, f"http://127.0.0.1:8080/verify/{doc_id}")

    def register(
        self,
        spec: RegistrationSpec,
        *,
        document_id: str,
        sha256: bytes,
        signer_certificate_sha256: Sequence[bytes],
    ) -> None:
        if self.fail_register:
            from egov_common.errors import Unavailable

            raise Unavailable("REGISTRY_UNAVAILABLE", "registry down")
        taken = self.keys.get(spec.idempotency_key)
        if taken is not None and taken != document_id:
            # as the registry (its message as it is): another signing registered under the key
            from egov_common.errors import FailedPrecondition

            raise FailedPrecondition(
                "IDEMPOTENCY_KEY_REUSED",
                "this idempotency key was used for a different registration",
                metadata={"document_id": taken},
            )
        self.registered.append((document_id, sha256))
        self.keys[spec.idempotency_key] = document_id


def make_pdf(pages: int = 1, text: str = "Hello egov-trust", image_bytes: int = 0) -> bytes:
    """A small valid PDF with ``pages`` pages of Helvetica text (classic xref table); with
    ``image_bytes``, the first page also shows an image of that many random (incompressible)
    bytes, for documents of a given size."""
    objs: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    font_num = 3 + 2 * pages
    for i in range(pages):
        stream = f"BT /F1 18 Tf 72 720 Td ({text} page {i + 1}) Tj ET".encode()
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_num} 0 R >> >> >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    if image_bytes:
        width, height = 1024, max(1, image_bytes // 3072)
        pixels = os.urandom(3 * width * height)
        objs[2] = objs[2].replace(
            b"/Resources << ", b"/Resources << /XObject << /Im1 %d 0 R >> " % (len(objs) + 1)
        )
        objs.append(
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
            b"/BitsPerComponent 8 /Length %d >>\nstream\n"
            % (width, height, len(pixels))
            + pixels
            + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def with_empty_signature_field(pdf: bytes, name: str, box: tuple[int, int, int, int]) -> bytes:
    """``pdf`` with an empty, visible signature field ``name`` on its first page."""
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    fields.append_signature_field(writer, fields.SigFieldSpec(name, on_page=0, box=box))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def with_text_field(pdf: bytes, name: str, value: str) -> bytes:
    """``pdf`` with a filled text field (``/FT /Tx``) ``name`` on its first page."""
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    widget = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Widget"),
            generic.NameObject("/FT"): generic.NameObject("/Tx"),
            generic.NameObject("/T"): generic.TextStringObject(name),
            generic.NameObject("/V"): generic.TextStringObject(value),
            generic.NameObject("/Rect"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (36, 700, 236, 720)]
            ),
            generic.NameObject("/P"): page_ref,
        }
    )
    ref = writer.add_object(widget)
    page = page_ref.get_object()
    page[generic.NameObject("/Annots")] = generic.ArrayObject([ref])
    writer.update_container(page)
    writer.root[generic.NameObject("/AcroForm")] = generic.DictionaryObject(
        {generic.NameObject("/Fields"): generic.ArrayObject([ref])}
    )
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- helpers for tests that run the real keys service (integration, bench) --------------------


def signing_token(identity: Any, lifetime: int = 3600) -> str:
    """signing's own bearer token towards keys when there is no mTLS (keys' LocalIdentity)."""
    token: str = identity.token(
        typ="at+jwt",
        sub="signing",
        client_id="signing",
        aud="urn:egov:keys",
        scope="keys:sign",
        acr=None,
        auth_time=None,
        exp=identity.now() + lifetime,
    )
    return token


def create_person_credential(
    keys_stub: Any, identity: Any, idempotency_key: str, person_id: str
) -> Any:
    """A natural person's credential in a real keys service (keys_pb2.Credential)."""
    from egov.keys.v1 import keys_pb2
    from egov.type.v1 import party_pb2

    return keys_stub.CreateCredential(
        keys_pb2.CreateCredentialRequest(
            idempotency_key=idempotency_key,
            owner=party_pb2.PartyIdentifier(
                namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value=person_id
            ),
            kind=keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON,
            names=party_pb2.PartyNames(
                given_name_th="สมชาย",
                family_name_th="ใจดี",
                given_name_en="Somchai",
                family_name_en="Jaidee",
            ),
            authorization_proof=identity.person(person_id),
        ),
        timeout=30,
    ).credential


def signing_env(keys_address: str, identity: Any) -> dict[str, str]:
    """The variables of a ``python -m egov_signing`` process beside keys at ``keys_address``
    (no registry; the shared corpus's trust anchors when it is there)."""
    import json

    from egov_testing.corpus import corpus_dir

    trust = corpus_dir() / "trust"
    anchors = [str(p) for p in sorted(trust.glob("*.pem"))] if trust.exists() else []
    return {
        "EGOV_KEYS_ADDRESS": keys_address,
        "EGOV_REGISTRY_ADDRESS": "127.0.0.1:9",
        "EGOV_SIGNING_KEYS_TOKEN": signing_token(identity),
        "EGOV_SIGNING_MAX_DOCUMENT_BYTES": str(3 * 1024 * 1024),
        "EGOV_SIGNING_TRUST_ANCHOR_FILES": json.dumps(anchors),
    }
