"""``python -m egov_testing.demo`` (``make demo``): the three stories of DESIGN.md, end to end.

Starts identity, keys, registry, signing and the verify portal as separate processes on loopback
(SQLite, software keys, mTLS from a dev service CA; see ``egov_testing.platform``), then:

1. **A citizen signs**: a synthetic citizen is proofed at IAL 2.3 (ID card chip + in-person
   check), sets a password and TOTP, logs in at AAL2 through a portal (authorization code +
   PKCE), has a signing credential issued by keys and signs a PDF at PAdES B-LT; the PDF is
   checked by pyHanko directly and by poppler's ``pdfsig`` with our root in an NSS database.
2. **An agency issues a certificate**: the agency's e-seal signs a certificate at B-LTA with a
   Thai visible stamp and a QR code, the registry registers it, and its inclusion proof is
   verified on the client side.
3. **A relying party verifies**: the genuine PDF passes; a flipped byte, a page swapped after
   signing, a revoked signer and a revoked registry entry each fail with their indication.

Writes every PDF with its validation report (JSON, ETSI TS 119 102-2 XML, summary) into
``./.demo/<timestamp>/`` (or ``--out``), prints the verify portal's URL and a link to the issued
certificate, and stops everything (``--keep-running`` leaves the services up until Ctrl-C).
The e2e tests (``tests/e2e/test_stories.py``) run these same story functions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from egov.keys.v1 import keys_pb2
from egov.registry.v1 import registry_pb2
from egov.signing.v1 import signing_pb2
from egov.type.v1 import crypto_pb2
from egov_clients.registry import VerifiedDocument
from egov_common.settings import DEFAULT_PORTS
from google.protobuf import json_format, timestamp_pb2

from egov_testing.platform import (
    CitizenSession,
    Platform,
    SignedDocument,
    _party,
    flip_byte_in_signed_range,
    nss_database,
    pdfsig,
    pyhanko_validate,
    qpdf_check,
    sample_pdf,
    start_platform,
    swap_page_after_signing,
    which_missing,
)

__all__ = [
    "CitizenSigned",
    "IssuedCertificate",
    "VerificationCase",
    "agency_issues_certificate",
    "citizen_signs",
    "main",
    "relying_party_verifies",
    "verify_byte_flipped",
    "verify_citizen_document",
    "verify_genuine",
    "verify_page_swapped",
    "verify_revoked_registry_entry",
    "verify_revoked_signer",
]

CERTIFICATE_TYPE = "business-registration-certificate"
REGISTRY_REVOCATION_TEXT = "Issued to the wrong company (demo)"


@dataclass
class CitizenSigned:
    """Story 1's outcome."""

    session: CitizenSession
    credential: keys_pb2.Credential
    signed: SignedDocument
    pyhanko: list[Any]  # pyHanko's PdfSignatureStatus per signature
    pdfsig_output: str  # with our root trusted in an NSS database ("" when pdfsig is missing)
    qpdf: tuple[int, str]


@dataclass
class IssuedCertificate:
    """Story 2's outcome."""

    signed: SignedDocument
    document: registry_pb2.Document
    proof: VerifiedDocument


@dataclass
class VerificationCase:
    """One PDF a relying party checks, and what VerifyDocument said."""

    name: str
    description: str
    pdf: bytes
    response: signing_pb2.VerifyDocumentResponse
    pdfsig_output: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> signing_pb2.ValidationReport:
        return self.response.report


# ---------------------------------------------------------------------------------------------
# The stories


def citizen_signs(platform: Platform, work_dir: Path, *, citizen_index: int = 0) -> CitizenSigned:
    """Story 1: proofing at IAL 2.3, AAL2 login through the portal, a credential, a B-LT
    signature, and the independent validators' opinions of the signed PDF."""
    citizen = platform.synthetic_citizen(citizen_index)
    session = platform.enrol_citizen(citizen)
    credential = platform.issue_citizen_credential(session)
    pdf = sample_pdf(
        "Consent to share tax records",
        [f"Signed electronically by {citizen.given_name_en} {citizen.family_name_en}"],
    )
    signed = platform.sign(
        pdf,
        signing_pb2.SignOptions(
            credential_id=credential.credential_id,
            authorization_proof=platform.fresh_id_token(session),
            level=crypto_pb2.PADES_LEVEL_B_LT,
            reason="I consent",
            location="Bangkok",
            stamp=signing_pb2.VisibleStamp(page=1, language="th"),
        ),
    )
    root = platform.root_certificate()
    statuses = pyhanko_validate(signed.pdf, root)
    output = ""
    if not which_missing(("pdfsig", "certutil")):
        nss = nss_database(work_dir / "nss", root)
        output = pdfsig(signed.pdf, work_dir, nss)
    qpdf = qpdf_check(signed.pdf, work_dir) if not which_missing(("qpdf",)) else (0, "")
    return CitizenSigned(session, credential, signed, statuses, output, qpdf)


def agency_issues_certificate(
    platform: Platform,
    *,
    subject: str = "",
    level: crypto_pb2.PadesLevel = crypto_pb2.PADES_LEVEL_B_LTA,
) -> IssuedCertificate:
    """Story 2: the agency's e-seal signs a certificate at B-LTA with a Thai stamp and a QR
    code, registered in the registry; its inclusion proof is verified client-side."""
    agency = platform.agency
    token = platform.agency_token()
    now = dt.datetime.now(dt.UTC)
    valid_from = timestamp_pb2.Timestamp()
    valid_from.FromDatetime(now)
    valid_until = timestamp_pb2.Timestamp()
    valid_until.FromDatetime(now + dt.timedelta(days=365))
    registration = signing_pb2.RegistrationRequest(
        issuer=_party(agency.identifier),
        document_type=CERTIFICATE_TYPE,
        valid_from=valid_from,
        valid_until=valid_until,
        metadata={
            "title": "หนังสือรับรองการจดทะเบียนนิติบุคคล",
            "issuer_name_th": agency.name_th,
            "issuer_name_en": agency.name_en,
        },
        idempotency_key=secrets.token_hex(16),
    )
    if subject:
        registration.subject.CopyFrom(_party(subject))
    pdf = sample_pdf(
        "CERTIFICATE OF BUSINESS REGISTRATION",
        [
            "Company: Siam Demo Co., Ltd.",
            "Registration number: 0105561000001",
            "Registered capital: 1,000,000 THB",
            f"Issued by: {agency.name_en}",
        ],
    )
    signed = platform.sign(
        pdf,
        signing_pb2.SignOptions(
            credential_id=agency.seal_credential_id,
            level=level,
            reason="รับรองความถูกต้อง",
            location="กรุงเทพมหานคร",
            stamp=signing_pb2.VisibleStamp(page=1, language="th", include_qr_code=True),
            registration=registration,
        ),
        bearer=token,
    )
    with platform.registry_client() as registry:
        document = registry.get_document(signed.result.document_id)
        proof = registry.verify_document(document)
    return IssuedCertificate(signed, document, proof)


def verify_genuine(platform: Platform, issued: IssuedCertificate) -> VerificationCase:
    """The agency's certificate exactly as issued."""
    pdf = issued.signed.pdf
    return VerificationCase(
        "genuine-certificate", "the agency's certificate as issued", pdf, platform.verify(pdf)
    )


def verify_citizen_document(platform: Platform, citizen: CitizenSigned) -> VerificationCase:
    """The citizen's B-LT signature (not registered: the registry does not know it)."""
    pdf = citizen.signed.pdf
    return VerificationCase(
        "citizen-consent", "the citizen's B-LT signature", pdf, platform.verify(pdf)
    )


def verify_byte_flipped(platform: Platform, issued: IssuedCertificate) -> VerificationCase:
    """One bit of the page text flipped inside the signed byte range."""
    pdf = flip_byte_in_signed_range(issued.signed.pdf)
    return VerificationCase(
        "byte-flipped",
        "one bit of the page text flipped inside the signed byte range",
        pdf,
        platform.verify(pdf),
    )


def verify_page_swapped(
    platform: Platform, issued: IssuedCertificate, work_dir: Path
) -> VerificationCase:
    """Page 1's content replaced by an incremental update after signing; pdfsig's opinion too."""
    pdf = swap_page_after_signing(issued.signed.pdf)
    return VerificationCase(
        "page-swapped",
        "page 1's content replaced by an incremental update after signing",
        pdf,
        platform.verify(pdf),
        pdfsig_output=pdfsig(pdf, work_dir) if not which_missing(("pdfsig",)) else "",
    )


def verify_revoked_signer(platform: Platform, session: CitizenSession) -> VerificationCase:
    """Sign at B-B with a second credential of the citizen, then revoke it (key compromise)."""
    second = platform.issue_citizen_credential(session)
    signed = platform.sign(
        sample_pdf("Change of address", ["A form signed just before the key was reported lost"]),
        signing_pb2.SignOptions(
            credential_id=second.credential_id,
            authorization_proof=platform.fresh_id_token(session),
            level=crypto_pb2.PADES_LEVEL_B_B,
            reason="Change of address",
        ),
    )
    revoked = platform.revoke_credential(second.credential_id, platform.fresh_id_token(session))
    return VerificationCase(
        "revoked-signer",
        "signed at B-B, then the signer's certificate was revoked (key compromise)",
        signed.pdf,
        platform.verify(signed.pdf),
        extra={
            "credential_id": second.credential_id,
            "credential_status": keys_pb2.CredentialStatus.Name(revoked.status),
        },
    )


def verify_revoked_registry_entry(platform: Platform) -> VerificationCase:
    """A second certificate, registered, then revoked in the registry by the agency."""
    wrong = agency_issues_certificate(platform, level=crypto_pb2.PADES_LEVEL_B_B)
    platform.revoke_registered_document(wrong.document.document_id, REGISTRY_REVOCATION_TEXT)
    return VerificationCase(
        "revoked-registry-entry",
        "a registered certificate the agency then revoked in the registry",
        wrong.signed.pdf,
        platform.verify(wrong.signed.pdf),
        extra={"document_id": wrong.document.document_id},
    )


def relying_party_verifies(
    platform: Platform,
    citizen: CitizenSigned,
    issued: IssuedCertificate,
    work_dir: Path,
) -> list[VerificationCase]:
    """Story 3: the genuine certificate passes; a flipped byte, a page swapped after signing, a
    revoked signer and a revoked registry entry fail, each with its indication and reason."""
    return [
        verify_genuine(platform, issued),
        verify_citizen_document(platform, citizen),
        verify_byte_flipped(platform, issued),
        verify_page_swapped(platform, issued, work_dir),
        verify_revoked_signer(platform, citizen.session),
        verify_revoked_registry_entry(platform),
    ]


# ---------------------------------------------------------------------------------------------
# Output


def indication_text(report: signing_pb2.ValidationReport) -> str:
    indication = str(signing_pb2.Indication.Name(report.indication)).removeprefix("INDICATION_")
    if report.sub_indication:
        sub = signing_pb2.SubIndication.Name(report.sub_indication)
        return f"{indication} / {sub.removeprefix('SUB_INDICATION_')}"
    return indication


#: What each relying-party case must show: (overall indications allowed, sub-indications allowed;
#: empty = any). The demo says "as expected" or "UNEXPECTED" per case and exits 1 on a surprise.
EXPECTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "genuine-certificate": (("TOTAL_PASSED",), ()),
    "citizen-consent": (("TOTAL_PASSED",), ()),
    "byte-flipped": (("TOTAL_FAILED",), ("HASH_FAILURE",)),
    "page-swapped": (("TOTAL_FAILED",), ("ILLEGAL_MODIFICATIONS",)),
    "revoked-signer": (("TOTAL_FAILED", "INDETERMINATE"), ("REVOKED", "REVOKED_NO_POE")),
    "revoked-registry-entry": (("TOTAL_FAILED", "INDETERMINATE"), ()),
}


def as_expected(case: VerificationCase) -> bool:
    """Whether ``case`` got the indication story 3 asks for (see :data:`EXPECTED`)."""
    indications, subs = EXPECTED[case.name]
    report = case.report
    indication = str(signing_pb2.Indication.Name(report.indication)).removeprefix("INDICATION_")
    sub = str(signing_pb2.SubIndication.Name(report.sub_indication))
    sub = sub.removeprefix("SUB_INDICATION_")
    if case.name == "revoked-registry-entry":
        revoked = signing_pb2.REGISTRY_CHECK_STATUS_REVOKED
        return indication in indications and report.registry.status == revoked
    return indication in indications and (not subs or sub in subs)


def write_case(out_dir: Path, case: VerificationCase) -> None:
    """``<name>.pdf``, ``.report.json``, ``.etsi.xml``, ``.summary.txt`` (+ ``.pdfsig.txt``)."""
    (out_dir / f"{case.name}.pdf").write_bytes(case.pdf)
    report = json_format.MessageToDict(case.response.report, preserving_proto_field_name=True)
    (out_dir / f"{case.name}.report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    if case.response.etsi_xml:
        (out_dir / f"{case.name}.etsi.xml").write_bytes(case.response.etsi_xml)
    (out_dir / f"{case.name}.summary.txt").write_text(case.response.summary + "\n", "utf-8")
    if case.pdfsig_output:
        (out_dir / f"{case.name}.pdfsig.txt").write_text(case.pdfsig_output, "utf-8")


def write_index(
    out_dir: Path, cases: Sequence[VerificationCase], issued: IssuedCertificate
) -> None:
    """``index.json``: per case what was done to the PDF, the verdict and whether it is the one
    story 3 asks for; plus the issued certificate's registry entry."""
    index = {
        "issued_certificate": {
            "document_id": issued.document.document_id,
            "verification_url": issued.signed.result.verification_url,
            "tree_size_proven": issued.proof.tree_head.tree_size,
        },
        "cases": [
            {
                "name": case.name,
                "what": case.description,
                "pdf": f"{case.name}.pdf",
                "verdict": indication_text(case.report),
                "reason": case.report.reason,
                "registry": signing_pb2.RegistryCheckStatus.Name(case.report.registry.status),
                "as_expected": as_expected(case),
            }
            for case in cases
        ],
    }
    (out_dir / "index.json").write_text(
        json.dumps(index, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def _default_ports_free() -> bool:
    for grpc_port, http_port in DEFAULT_PORTS.values():
        for port in (grpc_port, http_port):
            if port is None:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    return False
    return True


def run(out_dir: Path, *, keep_running: bool, default_ports: bool) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "work"
    print(f"egov-trust demo: starting the platform (data and logs in {work})", flush=True)
    with start_platform(work, default_ports=default_ports) as platform:
        for name, process in platform.processes.items():
            where = process.http_url if process.grpc_port is None else process.grpc_address
            print(f"  {name.lower():<14} up at {where}", flush=True)

        print("\n1. A citizen signs", flush=True)
        citizen = citizen_signs(platform, work)
        claims = citizen.session.claims
        print(
            f"   proofed at IAL {citizen.session.achieved_ial}, logged in with acr "
            f"{claims.get('acr')} ({' + '.join(claims.get('amr', []))})"
        )
        print(f"   credential {citizen.credential.credential_id} issued by keys")
        (out_dir / "citizen-consent.pdf").write_bytes(citizen.signed.pdf)
        bottom = [s.bottom_line for s in citizen.pyhanko]
        print(f"   signed at B-LT -> citizen-consent.pdf; pyHanko bottom line: {bottom}")
        if citizen.pdfsig_output:
            (out_dir / "citizen-consent.pdfsig.txt").write_text(citizen.pdfsig_output, "utf-8")
            valid = "Signature is Valid" in citizen.pdfsig_output
            trusted = "Certificate is Trusted" in citizen.pdfsig_output
            print(f"   pdfsig: signature valid={valid}, certificate trusted={trusted}")

        print("\n2. An agency issues a certificate", flush=True)
        issued = agency_issues_certificate(platform)
        result = issued.signed.result
        print(f"   e-seal of {platform.agency.name_en} signed at B-LTA with a Thai stamp + QR")
        print(f"   registered as {result.document_id}; verification URL {result.verification_url}")
        print(
            f"   inclusion proof verified against tree head of size "
            f"{issued.proof.tree_head.tree_size}"
        )

        print("\n3. A relying party verifies", flush=True)
        cases = relying_party_verifies(platform, citizen, issued, work)
        surprises = []
        for case in cases:
            write_case(out_dir, case)
            registry = signing_pb2.RegistryCheckStatus.Name(case.report.registry.status)
            expected = as_expected(case)
            if not expected:
                surprises.append(case.name)
            print(
                f"   {case.name:<24} {indication_text(case.report):<40} "
                f"registry {registry.removeprefix('REGISTRY_CHECK_STATUS_'):<11}"
                f"{'as expected' if expected else 'UNEXPECTED'}"
            )
            print(f"   {'':<24} {case.report.reason}")
            if case.pdfsig_output:
                valid = "Signature is Valid" in case.pdfsig_output
                print(f"   {'':<24} (pdfsig alone says signature valid={valid})")

        write_index(out_dir, cases, issued)
        print(f"\nSigned PDFs and reports (.report.json, .etsi.xml, .summary.txt) in {out_dir}")
        print("  (index.json lists every case: what was done, the verdict, the registry status)")
        print(f"Verify portal: {platform.verify_portal_url}/")
        print(f"Issued certificate (its QR code's link): {result.verification_url}", flush=True)
        if surprises:
            print(f"UNEXPECTED verdicts: {', '.join(surprises)}", flush=True)
        if keep_running:
            print("Services keep running; Ctrl-C stops them.", flush=True)
            _wait_for_interrupt()
        else:
            print("(python -m egov_testing.demo --keep-running leaves them up to browse)")
    print("All services stopped.", flush=True)
    return 1 if surprises else 0


def _wait_for_interrupt() -> None:
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stop.wait(0.5):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m egov_testing.demo", description=__doc__)
    parser.add_argument("--out", type=Path, help="output folder (default ./.demo/<timestamp>/)")
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the services up until Ctrl-C"
    )
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="free ports instead of the default ones (used anyway when those are taken)",
    )
    args = parser.parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = (args.out or Path(".demo") / stamp).resolve()
    default_ports = not args.free_ports and _default_ports_free()
    return run(out_dir, keep_running=args.keep_running, default_ports=default_ports)


if __name__ == "__main__":
    sys.exit(main())
