"""Thai (default) and English texts, and dates as each language writes them.

Thai dates use the Buddhist era (B.E. = C.E. + 543) and Thai month names; all times are shown
in Thailand's time zone (UTC+7, no daylight saving), with the zone named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from egov_common.thai_dates import format_clock, format_date

LANGUAGES = ("th", "en")
DEFAULT_LANGUAGE = "th"

# One entry per text: (Thai, English). Placeholders use str.format names.
_TEXTS: dict[str, tuple[str, str]] = {
    "site_title": ("ตรวจสอบเอกสารอิเล็กทรอนิกส์", "Verify an electronic document"),
    "site_tagline": (
        "ตรวจลายมือชื่ออิเล็กทรอนิกส์และสถานะในทะเบียนเอกสารของภาครัฐ",
        "Check the electronic signatures and the government registry status of a document",
    ),
    "skip_to_content": ("ข้ามไปยังเนื้อหา", "Skip to content"),
    "language": ("ภาษา", "Language"),
    "switch_language": ("English", "ภาษาไทย"),
    "switch_language_label": ("Switch to English", "เปลี่ยนเป็นภาษาไทย"),
    "upload_heading": ("อัปโหลดเอกสาร PDF ที่ลงลายมือชื่อแล้ว", "Upload a signed PDF"),
    "upload_help": (
        "เลือกไฟล์ PDF ขนาดไม่เกิน {limit} ระบบจะไม่เก็บไฟล์ของท่านไว้",
        "Choose a PDF file of at most {limit}. The file is not kept.",
    ),
    "upload_limit": ("ขนาดไฟล์สูงสุด {limit}", "Maximum file size {limit}"),
    "file_label": ("เลือกไฟล์ PDF", "choose a PDF file"),
    "drop_here": ("ลากไฟล์มาวางที่นี่ หรือ", "Drop the file here, or"),
    "choose_file": ("เลือกไฟล์", "choose a file"),
    "verify_button": ("ตรวจสอบ", "Verify"),
    "verifying": ("กำลังตรวจสอบ…", "Verifying…"),
    "selected_file": ("ไฟล์ที่เลือก: {name} ({size})", "Selected: {name} ({size})"),
    "too_large_client": (
        "ไฟล์นี้มีขนาด {size} เกินขนาดสูงสุด {limit}",
        "This file is {size}, more than the limit of {limit}",
    ),
    "report_heading": ("ผลการตรวจสอบ", "Verification report"),
    "verdict_valid": ("ถูกต้อง", "Valid"),
    "verdict_invalid": ("ไม่ถูกต้อง", "Not valid"),
    "verdict_indeterminate": ("ไม่สามารถสรุปได้", "Cannot tell"),
    "verdict_valid_explain": (
        "ลายมือชื่อทุกรายการถูกต้อง เอกสารไม่ถูกแก้ไขหลังลงลายมือชื่อ",
        "Every signature is valid and the document was not changed after signing.",
    ),
    "verdict_invalid_explain": (
        "อย่าเชื่อถือเอกสารนี้: {reason}",
        "Do not rely on this document: {reason}",
    ),
    "verdict_indeterminate_explain": (
        "ยังยืนยันไม่ได้ว่าเอกสารนี้ถูกต้อง: {reason}",
        "The document could not be confirmed: {reason}",
    ),
    "file_name": ("ไฟล์", "File"),
    "file_size": ("ขนาด", "Size"),
    "sha256": ("ค่าแฮช SHA-256", "SHA-256 hash"),
    "checked_at": ("ตรวจสอบเมื่อ", "Checked at"),
    "signatures_heading": ("ลายมือชื่อในเอกสาร ({count})", "Signatures in the document ({count})"),
    "signature_n": ("ลายมือชื่อที่ {n}", "Signature {n}"),
    "timestamp_n": ("ตราประทับเวลาเอกสารที่ {n}", "Document time-stamp {n}"),
    "signer": ("ผู้ลงลายมือชื่อ", "Signed by"),
    "organisation": ("หน่วยงาน/นิติบุคคล", "Organisation"),
    "identifier": ("เลขประจำตัว (ปิดบังบางส่วน)", "Identifier (masked)"),
    "signed_at": ("เวลาที่ลงลายมือชื่อ", "Signed at"),
    "time_trusted": ("ยืนยันด้วยตราประทับเวลา", "proven by a time-stamp"),
    "time_claimed": (
        "ตามที่โปรแกรมของผู้ลงนามระบุ (ไม่มีตราประทับเวลา)",
        "as claimed by the signer's software (no time-stamp)",
    ),
    "coverage": ("ขอบเขตที่ลงลายมือชื่อ", "What it covers"),
    "coverage_whole": ("ทั้งเอกสาร", "the whole document"),
    "coverage_revision": (
        "เอกสารฉบับที่ลงนาม มีการเพิ่มเติมภายหลัง",
        "the signed version; content was added later",
    ),
    "coverage_partial": ("บางส่วนของไฟล์เท่านั้น", "only part of the file"),
    "changes": ("การเปลี่ยนแปลงหลังลงลายมือชื่อ", "Changes after signing"),
    "changes_none": ("ไม่มี", "none"),
    "changes_allowed": ("มี แต่เป็นการเปลี่ยนแปลงที่อนุญาต ({what})", "allowed changes only ({what})"),
    "changes_forbidden": ("มีการแก้ไขที่ไม่อนุญาต ({what})", "changes that are not allowed ({what})"),
    "certificate": ("ใบรับรอง", "Certificate"),
    "cert_trusted": ("เชื่อถือได้ (ออกโดย {issuer})", "trusted (issued by {issuer})"),
    "cert_untrusted": ("ไม่สามารถยืนยันผู้ออกใบรับรอง ({issuer})", "not trusted (issuer {issuer})"),
    "cert_validity": ("ใช้ได้ {start} ถึง {end}", "valid {start} to {end}"),
    "revocation": ("สถานะการเพิกถอนใบรับรอง", "Revocation status"),
    "pades_level": ("ระดับ PAdES", "PAdES level"),
    "certified": ("ลายมือชื่อรับรองเอกสาร (certification)", "certification signature"),
    "indication": ("ผลตาม ETSI EN 319 102-1", "ETSI EN 319 102-1 result"),
    "reason": ("เหตุผล", "Reason"),
    "no_signatures": ("ไม่พบลายมือชื่อในไฟล์นี้", "No signature was found in this file"),
    "registry_heading": ("สถานะในทะเบียนเอกสาร", "Registry status"),
    "registry_registered": ("ขึ้นทะเบียนแล้ว", "Registered"),
    "registry_revoked": ("ถูกเพิกถอน", "Revoked"),
    "registry_superseded": ("ถูกแทนที่ด้วยฉบับใหม่", "Superseded by a newer version"),
    "registry_not_registered": (
        "ไม่พบในทะเบียนเอกสาร (เอกสารที่ไม่ได้ออกผ่านระบบนี้)",
        "Not in the registry (not issued through this platform)",
    ),
    "registry_unavailable": (
        "ขณะนี้ตรวจสอบทะเบียนเอกสารไม่ได้ โปรดลองใหม่ภายหลัง",
        "The registry cannot be reached right now; please try again later",
    ),
    "revocation_reason": ("เหตุผลการเพิกถอน", "Reason for revocation"),
    "revoked_at": ("เพิกถอนเมื่อ", "Revoked at"),
    "superseded_by": ("ฉบับใหม่", "Newer version"),
    "open_new_version": ("เปิดดูฉบับใหม่", "Open the newer version"),
    "proof_verified": (
        "ตรวจสอบหลักฐานการบันทึกในบันทึกโปร่งใส (Merkle inclusion proof) แล้ว ถูกต้อง",
        "Transparency-log inclusion proof checked: it verifies",
    ),
    "proof_failed": (
        "หลักฐานการบันทึกในบันทึกโปร่งใสไม่ถูกต้อง",
        "The transparency-log inclusion proof does NOT verify",
    ),
    "proof_not_available": (
        "ไม่มีหลักฐานการบันทึกในบันทึกโปร่งใส",
        "No transparency-log inclusion proof available",
    ),
    "document_id": ("เลขที่เอกสาร", "Document ID"),
    "issuer": ("หน่วยงานผู้ออก", "Issuer"),
    "document_type": ("ประเภทเอกสาร", "Document type"),
    "title": ("ชื่อเอกสาร", "Title"),
    "registered_at": ("ขึ้นทะเบียนเมื่อ", "Registered at"),
    "valid_from": ("มีผลตั้งแต่", "Valid from"),
    "valid_until": ("มีผลถึง", "Valid until"),
    "status": ("สถานะ", "Status"),
    "registered_hash": ("ค่าแฮชที่ขึ้นทะเบียน (SHA-256)", "Registered hash (SHA-256)"),
    "entry_heading": ("ข้อมูลเอกสารในทะเบียน", "Registry entry"),
    "compare_heading": ("เปรียบเทียบกับไฟล์ที่ท่านมี", "Compare with the copy you have"),
    "compare_help": (
        "อัปโหลดไฟล์ PDF ที่ท่านได้รับ ระบบจะตรวจลายมือชื่อและเทียบค่าแฮชกับที่ขึ้นทะเบียนไว้",
        "Upload the PDF you were given: its signatures are checked and its hash is compared "
        "with the registered one.",
    ),
    "hash_matches": (
        "ไฟล์ของท่านตรงกับเอกสารที่ขึ้นทะเบียน {id}",
        "Your file is the registered document {id}",
    ),
    "hash_differs": (
        "ไฟล์ของท่านไม่ตรงกับเอกสารที่ขึ้นทะเบียน {id}",
        "Your file is NOT the registered document {id}",
    ),
    "hash_differs_reason": (
        "ไฟล์ที่อัปโหลดไม่ตรงกับเอกสารที่ขึ้นทะเบียน",
        "the uploaded file is not the registered document",
    ),
    "downloads": ("ดาวน์โหลดรายงาน", "Download the report"),
    "download_xml": (
        "รายงานการตรวจสอบ ETSI TS 119 102-2 (XML)",
        "ETSI TS 119 102-2 validation report (XML)",
    ),
    "download_pdf": ("สรุปผลการตรวจสอบ 1 หน้า (PDF)", "One-page summary (PDF)"),
    "verify_another": ("ตรวจสอบเอกสารอื่น", "Verify another document"),
    "error_heading": ("ตรวจสอบไม่ได้", "The document could not be checked"),
    "error_not_pdf": (
        "ไฟล์นี้ไม่ใช่ PDF โปรดเลือกไฟล์ PDF",
        "This file is not a PDF. Please choose a PDF file.",
    ),
    "error_too_large": (
        "ไฟล์มีขนาดเกิน {limit} โปรดเลือกไฟล์ที่เล็กกว่านี้",
        "The file is larger than {limit}. Please choose a smaller file.",
    ),
    "error_broken_pdf": (
        "อ่านไฟล์ PDF นี้ไม่ได้ ไฟล์อาจเสียหาย",
        "This PDF cannot be read; the file may be damaged.",
    ),
    "error_no_signature": (
        "ไฟล์ PDF นี้ไม่มีลายมือชื่ออิเล็กทรอนิกส์ จึงไม่มีสิ่งใดให้ตรวจสอบ",
        "This PDF has no electronic signature, so there is nothing to verify.",
    ),
    "error_encrypted": (
        "ไฟล์ PDF นี้ถูกเข้ารหัส จึงตรวจสอบไม่ได้",
        "This PDF is encrypted and cannot be checked.",
    ),
    "error_no_file": ("โปรดเลือกไฟล์ PDF ก่อนกดตรวจสอบ", "Please choose a PDF file first."),
    "error_bad_request": (
        "คำขอไม่ถูกต้อง โปรดลองอัปโหลดใหม่",
        "The upload was not understood. Please try again.",
    ),
    "error_unavailable": (
        "ระบบตรวจสอบขัดข้องชั่วคราว โปรดลองใหม่ภายหลัง",
        "The verification service is unavailable right now. Please try again later.",
    ),
    "error_busy": (
        "ขณะนี้มีผู้ตรวจสอบเอกสารจำนวนมาก โปรดลองใหม่อีกครั้งในอีกสักครู่",
        "Many documents are being checked right now. Please try again in a moment.",
    ),
    "error_timeout": (
        "การอัปโหลดหยุดชะงักหรือช้าเกินไป โปรดลองอัปโหลดใหม่",
        "The upload stalled or was too slow. Please try again.",
    ),
    "error_not_found": ("ไม่พบเอกสารเลขที่ {id} ในทะเบียน", "No document {id} in the registry"),
    "error_page_not_found": ("ไม่พบหน้าที่ต้องการ", "Page not found"),
    "error_report_expired": (
        "รายงานนี้หมดอายุหรือไม่ถูกต้อง โปรดอัปโหลดเอกสารอีกครั้ง",
        "This report has expired or is not genuine. Please upload the document again.",
    ),
    "error_method": ("วิธีการเรียกใช้ไม่ถูกต้อง", "Method not allowed"),
    "back_to_upload": ("กลับไปหน้าอัปโหลด", "Back to the upload page"),
    "privacy_note": (
        "ไฟล์ที่อัปโหลดใช้เพื่อตรวจสอบเท่านั้นและไม่ถูกจัดเก็บ",
        "Uploaded files are used for the check only and are not stored.",
    ),
    "summary_title": (
        "สรุปผลการตรวจสอบเอกสารอิเล็กทรอนิกส์",
        "Electronic document verification summary",
    ),
    "summary_footer": (
        "สรุปนี้จัดทำโดยระบบตรวจสอบเอกสาร ณ เวลาที่ระบุ ผลอาจเปลี่ยนได้หากมีการเพิกถอนภายหลัง",
        "Produced by the verification portal at the time shown; the result may change if "
        "something is revoked later.",
    ),
    "notes": ("ข้อสังเกตเกี่ยวกับไฟล์", "About the file"),
    "unsigned_tail": (
        "มีเนื้อหาต่อท้ายฉบับที่ลงลายมือชื่อล่าสุด ซึ่งไม่มีลายมือชื่อใดครอบคลุม",
        "Content was added after the last signed version and no signature covers it",
    ),
    "revocation_reason_ISSUED_IN_ERROR": ("ออกผิดพลาด", "issued in error"),
    "revocation_reason_NO_LONGER_VALID": ("ข้อเท็จจริงเปลี่ยนไป ไม่มีผลแล้ว", "no longer valid"),
    "revocation_reason_FRAUD": ("ได้มาโดยทุจริต", "obtained by fraud"),
    "revocation_reason_SUBJECT_REQUEST": ("เพิกถอนตามคำขอของเจ้าของ", "at the subject's request"),
    "revocation_reason_LEGAL_ORDER": ("ตามคำสั่งศาลหรือคำสั่งทางกฎหมาย", "by a legal order"),
    "revocation_reason_KEY_COMPROMISE": (
        "กุญแจหรือใบรับรองที่ใช้ลงนามถูกเปิดเผย",
        "the signing key or certificate was compromised",
    ),
    "revocation_reason_OTHER": ("เหตุผลอื่น", "another reason"),
    "tree_size": ("ขนาดบันทึก {n} รายการ", "log of {n} entries"),
    "modification_LTA_UPDATES": (
        "เพิ่มข้อมูลสำหรับตรวจสอบระยะยาวและตราประทับเวลา",
        "validation data and time-stamps for long-term validation",
    ),
    "modification_FORM_FILLING": ("กรอกแบบฟอร์มและลงลายมือชื่อเพิ่ม", "form filling and signing"),
    "modification_ANNOTATIONS": ("เพิ่มหมายเหตุ (annotation)", "annotations"),
    "modification_OTHER": ("แก้ไขเนื้อหาหรือโครงสร้างเอกสาร", "changes to content or structure"),
    "revocation_GOOD": ("ตรวจแล้ว ไม่ถูกเพิกถอน", "checked, not revoked"),
    "revocation_REVOKED": ("ถูกเพิกถอน", "revoked"),
    "revocation_UNKNOWN": ("ไม่มีข้อมูลการเพิกถอนที่ใช้ได้", "no usable revocation information"),
    "revocation_NOT_CHECKED": (
        "ไม่ได้ตรวจ (ใบรับรองไม่ระบุบริการตรวจสถานะ หรือเป็นใบรับรองที่เชื่อถือโดยตรง)",
        "not checked (the certificate names no revocation service, or is itself trusted directly)",
    ),
    "time_zone": ("เวลาประเทศไทย", "Bangkok time, UTC+7"),
    "yes": ("ใช่", "yes"),
    "none": ("-", "-"),
}

_TH_REASONS: dict[str, str] = {
    "HASH_FAILURE": "เนื้อหาเอกสารถูกแก้ไขหลังลงลายมือชื่อ (ค่าแฮชไม่ตรง)",
    "SIG_CRYPTO_FAILURE": "ค่าลายมือชื่อไม่ถูกต้องทางคริปโตกราฟี",
    "FORMAT_FAILURE": "รูปแบบลายมือชื่อไม่ถูกต้องหรืออ่านไม่ได้",
    "ILLEGAL_MODIFICATIONS": "มีการแก้ไขเอกสารหลังลงลายมือชื่อที่ไม่ได้รับอนุญาต",
    "REVOKED": "ใบรับรองของผู้ลงลายมือชื่อถูกเพิกถอน",
    "REVOKED_NO_POE": "ใบรับรองของผู้ลงลายมือชื่อถูกเพิกถอน",
    "REVOKED_CA_NO_POE": "ใบรับรองของผู้ออกใบรับรองถูกเพิกถอน",
    "NO_CERTIFICATE_CHAIN_FOUND": "ไม่พบสายใบรับรองไปยังผู้ออกใบรับรองที่เชื่อถือได้",
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": "ตรวจสอบสายใบรับรองไม่สำเร็จ",
    "OUT_OF_BOUNDS_NO_POE": "ใบรับรองหมดอายุหรือยังไม่มีผล ณ เวลาที่ลงนาม",
    "OUT_OF_BOUNDS_NOT_REVOKED": "ใบรับรองหมดอายุ",
    "EXPIRED": "ใบรับรองหมดอายุ",
    "NOT_YET_VALID": "ใบรับรองยังไม่มีผล",
    "CRYPTO_CONSTRAINTS_FAILURE": "อัลกอริทึมคริปโตกราฟีไม่ปลอดภัยเพียงพอ",
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": "อัลกอริทึมคริปโตกราฟีไม่ปลอดภัยเพียงพอ",
    "TRY_LATER": "ยังไม่มีข้อมูลการเพิกถอนใบรับรอง โปรดลองใหม่ภายหลัง",
    "SIGNED_DATA_NOT_FOUND": "ไม่พบข้อมูลที่ลงลายมือชื่อ",
    "NO_SIGNING_CERTIFICATE_FOUND": "ไม่พบใบรับรองของผู้ลงลายมือชื่อ",
    "DOCUMENT_REVOKED": "เอกสารถูกเพิกถอนในทะเบียน",
    "DOCUMENT_SUPERSEDED": "เอกสารถูกแทนที่ด้วยฉบับใหม่",
    "PROOF_FAILED": "หลักฐานในบันทึกโปร่งใสไม่ถูกต้อง",
    "REGISTRY_UNAVAILABLE": "ขณะนี้ตรวจสอบสถานะในทะเบียนเอกสารไม่ได้ โปรดลองใหม่ภายหลัง",
    "HASH_DIFFERS": "ไฟล์ที่อัปโหลดไม่ตรงกับเอกสารที่ขึ้นทะเบียน",
}
_EN_REASONS: dict[str, str] = {
    "HASH_FAILURE": "the document's content was changed after signing (hash mismatch)",
    "SIG_CRYPTO_FAILURE": "the signature value does not verify",
    "FORMAT_FAILURE": "the signature is malformed or cannot be read",
    "ILLEGAL_MODIFICATIONS": "the document was changed after signing in a way that is not allowed",
    "REVOKED": "the signer's certificate has been revoked",
    "REVOKED_NO_POE": "the signer's certificate has been revoked",
    "REVOKED_CA_NO_POE": "a certificate authority in the chain has been revoked",
    "NO_CERTIFICATE_CHAIN_FOUND": "no certificate chain to a trusted authority",
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": "the certificate chain could not be validated",
    "OUT_OF_BOUNDS_NO_POE": "the certificate was expired or not yet valid at signing time",
    "OUT_OF_BOUNDS_NOT_REVOKED": "the certificate has expired",
    "EXPIRED": "the certificate has expired",
    "NOT_YET_VALID": "the certificate is not yet valid",
    "CRYPTO_CONSTRAINTS_FAILURE": "the cryptographic algorithms are too weak",
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": "the cryptographic algorithms are too weak",
    "TRY_LATER": "no revocation information is available yet; try again later",
    "SIGNED_DATA_NOT_FOUND": "the signed data cannot be found",
    "NO_SIGNING_CERTIFICATE_FOUND": "the signer's certificate is missing",
    "DOCUMENT_REVOKED": "the document has been revoked in the registry",
    "DOCUMENT_SUPERSEDED": "a newer version of the document replaces it",
    "PROOF_FAILED": "the registry's transparency-log proof does not verify",
    "REGISTRY_UNAVAILABLE": "the registry cannot be asked right now; try again later",
    "HASH_DIFFERS": "the uploaded file is not the registered document",
}


def normalise_language(value: str | None) -> str | None:
    """``"th"``/``"en"`` (also ``th-TH``, ``EN``), or ``None`` for anything else."""
    if not value:
        return None
    code = value.strip().lower()[:2]
    return code if code in LANGUAGES else None


@dataclass(frozen=True, slots=True)
class Translator:
    """Texts and formats for one language."""

    language: str

    @property
    def _index(self) -> int:
        return 0 if self.language == "th" else 1

    def __call__(self, key: str, **values: object) -> str:
        text = _TEXTS[key][self._index]
        return text.format(**values) if values else text

    def optional(self, key: str, fallback: str) -> str:
        """The text for ``key`` if there is one, else ``fallback`` (codes from peers)."""
        return self(key) if key in _TEXTS else fallback

    def revocation_reason(self, code: str, text: str) -> str:
        """The issuer's words with the reason code in this language: ``text (words)``."""
        words = self.optional("revocation_reason_" + code, code) if code else ""
        if text and words:
            return f"{text} ({words})"
        return text or words or "-"

    def modification(self, level: str) -> str:
        return self.optional("modification_" + level, level)

    def revocation(self, status: str) -> str:
        """``GOOD`` -> words; ``REVOKED (keyCompromise)`` keeps its RFC 5280 reason."""
        code, _, detail = status.partition(" ")
        words = self.optional("revocation_" + code, code or "-")
        return f"{words} {detail}".strip()

    def reason(self, code: str, fallback: str = "") -> str:
        """A sub-indication or reason code in words; ``fallback`` (or the code) if unknown."""
        table: Mapping[str, str] = _TH_REASONS if self.language == "th" else _EN_REASONS
        key = code.upper().removeprefix("SUB_INDICATION_")
        return table.get(key) or fallback or code

    def date(self, value: datetime | None) -> str:
        """A calendar date: ``25 พฤศจิกายน 2569`` / ``25 November 2026`` (Bangkok time)."""
        if value is None:
            return "-"
        return format_date(value, self.language)

    def datetime(self, value: datetime | None) -> str:
        """Date and time to the second in Bangkok time, the zone named."""
        if value is None:
            return "-"
        clock = format_clock(value)
        if self.language == "th":
            return f"{self.date(value)} เวลา {clock} น. ({self('time_zone')})"
        return f"{self.date(value)}, {clock} ({self('time_zone')})"

    def size(self, n_bytes: int) -> str:
        """A file size in words a person reads (``20 MB``, ``512 KB``, ``10 bytes``)."""
        mib = 1024 * 1024
        if n_bytes >= mib:
            value = n_bytes / mib
            return f"{value:.0f} MB" if value == int(value) else f"{value:.1f} MB"
        if n_bytes >= 1024:
            return f"{n_bytes / 1024:.0f} KB"
        return f"{n_bytes} ไบต์" if self.language == "th" else f"{n_bytes} bytes"

