# pyHanko's PDF writer API is untyped.
# mypy: disable-error-code="no-untyped-call"
"""A one-page PDF summary of a verification report, Thai text shaped with HarfBuzz.

Built with pyHanko's own PDF writer and OpenType glyph accumulator (already a dependency for
PAdES), so no second PDF library is needed: the TLWG Thai font is subset and embedded, text is
shaped (Thai vowels and tone marks stack correctly) and carries ActualText so it can be copied.

Long text is measured once and broken at the measured widths, so drawing costs time in
proportion to its length; the text itself is already cut to a bounded length where it enters
the portal (``adapters.peers``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO

import uharfbuzz as hb
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from ..i18n import Translator
from .report import ProofCheck, RegistryStatus, Verdict, VerificationReport

A4 = (595.0, 842.0)
MARGIN = 48.0

_VERDICT_RGB = {
    Verdict.VALID: (0.0, 0.42, 0.18),
    Verdict.INVALID: (0.70, 0.05, 0.05),
    Verdict.INDETERMINATE: (0.55, 0.35, 0.0),
}
# Text marks the embedded font has (TLWG fonts have no check mark glyph); the verdict box
# draws a vector icon instead.
_VERDICT_MARK = {Verdict.VALID: "[OK]", Verdict.INVALID: "[X]", Verdict.INDETERMINATE: "[?]"}
_VERDICT_ICON = {
    # check mark, cross, and a bar-and-dot for "cannot tell"; drawn in a 20 x 20 box
    Verdict.VALID: b"3 w 1 J 1 j 2 10 m 8 3 l 19 17 l S",
    Verdict.INVALID: b"3 w 1 J 3 3 m 17 17 l S 3 17 m 17 3 l S",
    Verdict.INDETERMINATE: b"3 w 1 J 10 19 m 10 8 l S 10 3 m 10 3.2 l S",
}


@dataclass(frozen=True, slots=True)
class SummaryFonts:
    """Paths to the TrueType fonts to embed (regular and bold; both need Thai glyphs)."""

    regular: str
    bold: str


class _Page:
    """A top-to-bottom text cursor over one A4 page."""

    def __init__(self, writer: PdfFileWriter, fonts: SummaryFonts) -> None:
        self.writer = writer
        self._handles = [open(fonts.regular, "rb"), open(fonts.bold, "rb")]  # noqa: SIM115
        self.fonts = {
            "R": GlyphAccumulator(writer, self._handles[0], font_size=10, bcp47_lang_code=None),
            "B": GlyphAccumulator(writer, self._handles[1], font_size=10, bcp47_lang_code=None),
        }
        self.ops: list[bytes] = []
        self.y = A4[1] - MARGIN
        self.full = False
        self.footer = False

    def close(self) -> None:
        for handle in self._handles:
            handle.close()

    def advances(self, text: str, font: str, size: float) -> list[float]:
        """The width in points of each character of ``text``, shaped as one run.

        A cluster's width (a Thai letter with its vowel and tone marks) is its first
        character's; the others are 0 wide, so a line is never cut inside a cluster.
        """
        widths = [0.0] * len(text)
        if not text:
            return widths
        engine = self.fonts[font]
        buffer = hb.Buffer()
        buffer.add_str(text)  # clusters are character indices
        buffer.guess_segment_properties()
        hb.shape(engine.hb_font, buffer, engine.features)
        scale = size / engine.units_per_em
        for info, position in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True):
            widths[info.cluster] += position.x_advance * scale
        return widths

    def text(
        self,
        text: str,
        *,
        font: str = "R",
        size: float = 10,
        x: float = MARGIN,
        rgb: tuple[float, float, float] = (0, 0, 0),
        advance: bool = True,
    ) -> None:
        if self.full:
            return
        if self.y - size < MARGIN + 30 and not self.footer:
            self.full = True
            text = "…"
        engine = self.fonts[font]
        engine.font_size = size  # type: ignore[assignment]
        shaped = engine.shape(text).graphics_ops
        self.ops.append(
            b"BT %g %g %g rg /%s %g Tf 1 0 0 1 %g %g Tm %s ET"
            % (*rgb, font.encode(), size, x, self.y - size, shaped)
        )
        if advance:
            self.y -= size * 1.45

    def wrapped(self, text: str, *, font: str = "R", size: float = 10, x: float = MARGIN) -> None:
        """Text broken at spaces to fit the page width (long unbroken runs are split)."""
        widths = self.advances(text, font, size)
        for line in break_lines(text, widths, A4[0] - MARGIN - x):
            self.text(line, font=font, size=size, x=x)

    def field(self, label: str, value: str, *, x: float = MARGIN, size: float = 9.5) -> None:
        self.text(label, font="B", size=size, x=x, advance=False)
        self.wrapped(value or "-", size=size, x=x + 170)

    def rule(self) -> None:
        self.y -= 4
        self.ops.append(b"0.75 g %g %g %g 0.6 re f 0 g" % (MARGIN, self.y, A4[0] - 2 * MARGIN))
        self.y -= 10

    def icon(self, verdict: Verdict, x: float, y: float) -> None:
        self.ops.append(b"q 1 1 1 RG 1 0 0 1 %g %g cm %s Q" % (x, y, _VERDICT_ICON[verdict]))

    def box(self, height: float, rgb: tuple[float, float, float]) -> None:
        self.ops.append(
            b"%g %g %g rg %g %g %g %g re f 0 g"
            % (*rgb, MARGIN, self.y - height, A4[0] - 2 * MARGIN, height)
        )

    def finish(self) -> None:
        resources = generic.DictionaryObject(
            {
                pdf_name("/Font"): generic.DictionaryObject(
                    {pdf_name("/" + name): eng.as_resource() for name, eng in self.fonts.items()}
                )
            }
        )
        stream = generic.StreamObject(stream_data=b"\n".join(self.ops))
        stream.compress()
        page = PageObject(
            contents=self.writer.add_object(stream), media_box=[0, 0, *A4], resources=resources
        )
        self.writer.insert_page(page)


def break_lines(text: str, widths: Sequence[float], limit: float) -> list[str]:
    """``text`` in lines at most ``limit`` wide, broken at spaces; a word wider than a line
    is split between characters. ``widths``: each character's width (``_Page.advances``).

    Each character is looked at a bounded number of times: linear in the text's length.
    """
    lines: list[str] = []
    line_start = line_end = 0  # the line being filled is text[line_start:line_end]
    line_width = 0.0
    start = 0
    for word in text.split(" "):
        end = start + len(word)
        word_width = sum(widths[start:end])
        if line_end > line_start:
            joined = line_width + widths[start - 1] + word_width  # with the space before it
            if joined <= limit:
                line_end, line_width = end, joined
                start = end + 1
                continue
            lines.append(text[line_start:line_end])
        while word_width > limit and end - start > 1:
            cut, run = start + 1, widths[start]  # at least one character per line
            while cut < end and (run + widths[cut] <= limit or widths[cut] == 0):
                run += widths[cut]
                cut += 1
            lines.append(text[start:cut])
            start, word_width = cut, word_width - run
        line_start, line_end, line_width = start, end, word_width
        start = end + 1
    if line_end > line_start:
        lines.append(text[line_start:line_end])
    return lines


def render_summary(
    report: VerificationReport,
    translator: Translator,
    fonts: SummaryFonts,
    *,
    portal_url: str = "",
) -> bytes:
    """One A4 page: verdict, file, signatures (as many as fit) and registry status."""
    t = translator
    writer = PdfFileWriter(stream_xrefs=False)
    writer.set_info(None)
    page = _Page(writer, fonts)
    try:
        _draw(page, report, t, portal_url)
        page.finish()
        out = BytesIO()
        writer.write(out)
        return out.getvalue()
    finally:
        page.close()


def _draw(page: _Page, report: VerificationReport, t: Translator, portal_url: str) -> None:
    page.text(t("summary_title"), font="B", size=16)
    page.text(t("checked_at") + ": " + t.datetime(report.checked_at), size=9)
    page.y -= 6

    verdict = report.verdict
    page.box(40, _VERDICT_RGB[verdict])
    page.icon(verdict, MARGIN + 12, page.y - 30)
    page.y -= 11
    page.text(t("verdict_" + verdict.value), font="B", size=18, x=MARGIN + 44, rgb=(1, 1, 1))
    page.y -= 12
    page.wrapped(_explanation(report, t), size=10)
    if report.matches_expected is not None:
        key = "hash_matches" if report.matches_expected else "hash_differs"
        page.wrapped(t(key, id=report.expected_document_id), font="B", size=10)
    page.rule()

    page.field(t("file_name"), report.file_name)
    page.field(t("file_size"), t.size(report.file_size))
    page.field(t("sha256"), report.sha256_hex)
    page.rule()

    if not report.signatures:
        page.text(t("no_signatures"), font="B")
    for index, sig in enumerate(report.signatures, start=1):
        title_key = "timestamp_n" if sig.is_document_timestamp else "signature_n"
        mark = _VERDICT_MARK[sig.verdict]
        page.text(
            f"{t(title_key, n=index)}: {t('verdict_' + sig.verdict.value)} {mark}",
            font="B",
            size=11,
            rgb=_VERDICT_RGB[sig.verdict],
        )
        if not sig.is_document_timestamp:
            page.field(t("signer"), sig.signer_name)
            if sig.signer_organisation:
                page.field(t("organisation"), sig.signer_organisation)
            if sig.signer_identifier_masked:
                page.field(t("identifier"), sig.signer_identifier_masked)
        how = t("time_trusted") if sig.time_is_trusted else t("time_claimed")
        page.field(t("signed_at"), f"{t.datetime(sig.signed_at)} ({how})")
        page.field(t("coverage"), _coverage(sig.covers_whole_document, sig.coverage, t))
        page.field(
            t("certificate"), _certificate(sig.certificate_trusted, sig.certificate_issuer, t)
        )
        page.field(t("revocation"), t.revocation(sig.revocation_status))
        if sig.pades_level:
            page.field(t("pades_level"), sig.pades_level)
        if sig.verdict is not Verdict.VALID:
            page.field(t("reason"), t.reason(sig.sub_indication, sig.reason))
        page.y -= 4
    page.rule()

    registry = report.registry
    page.text(t("registry_heading"), font="B", size=11)
    page.field(t("status"), t("registry_" + registry.status.value))
    if registry.entry is not None:
        entry = registry.entry
        page.field(t("document_id"), entry.document_id)
        page.field(t("issuer"), entry.issuer)
        page.field(t("document_type"), entry.document_type)
        if registry.status is RegistryStatus.REVOKED:
            page.field(
                t("revocation_reason"),
                t.revocation_reason(entry.revocation_reason_code, entry.revocation_reason),
            )
        if registry.status is RegistryStatus.SUPERSEDED:
            page.field(t("superseded_by"), entry.superseded_by)
        page.field("Merkle", t("proof_" + registry.proof.value))

    page.y = MARGIN + 24
    page.full, page.footer = False, True
    page.wrapped(t("summary_footer") + (f" {portal_url}" if portal_url else ""), size=8)


def _explanation(report: VerificationReport, t: Translator) -> str:
    verdict = report.verdict
    if verdict is Verdict.VALID:
        return t("verdict_valid_explain")
    return t("verdict_" + verdict.value + "_explain", reason=overall_reason(report, t.reason))


def overall_reason(report: VerificationReport, words: Callable[[str, str], str]) -> str:
    """Why the document is not valid, in words (``words(code, fallback)`` translates)."""
    registry = report.registry
    if registry.status is RegistryStatus.REVOKED:
        reason = words("DOCUMENT_REVOKED", "")
        detail = registry.entry.revocation_reason if registry.entry else ""  # issuer's words
        return f"{reason} ({detail})" if detail else reason
    for sig in report.signatures:
        if sig.verdict is not Verdict.VALID:
            return words(sig.sub_indication, sig.reason) if sig.sub_indication else sig.reason
    if report.signatures_verdict is not Verdict.VALID:
        return words(report.signatures_sub_indication, report.signatures_indication)
    if report.matches_expected is False:
        return words("HASH_DIFFERS", "")
    if registry.status is RegistryStatus.SUPERSEDED:
        return words("DOCUMENT_SUPERSEDED", "")
    if registry.status is RegistryStatus.UNAVAILABLE:
        return words("REGISTRY_UNAVAILABLE", "")
    if registry.proof is ProofCheck.FAILED:
        return words("PROOF_FAILED", "")
    return ""


def _coverage(whole: bool, coverage: str, t: Translator) -> str:
    if whole:
        return t("coverage_whole")
    if coverage.upper().endswith("ENTIRE_REVISION"):
        return t("coverage_revision")
    return t("coverage_partial")


def _certificate(trusted: bool, issuer: str, t: Translator) -> str:
    return t("cert_trusted", issuer=issuer) if trusted else t("cert_untrusted", issuer=issuer)
