"""The visible signature stamp: signer, organisation, date, reason and a QR code.

Thai text is shaped by HarfBuzz (pyHanko's OpenType support) with an embedded TLWG font, so
stacked vowels and tone marks render correctly and the text extracts back exactly (the font
subset carries a ToUnicode map). Dates are Buddhist era in Thai (year + 543).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from egov_common.thai_dates import format_date
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.stamp import QRStampStyle, TextStampStyle

__all__ = [
    "DEFAULT_THAI_FONTS",
    "StampSpec",
    "name_values",
    "pick_for_language",
    "stamp_lines",
    "stamp_style",
]

DEFAULT_THAI_FONTS = (
    "/usr/share/fonts/truetype/tlwg/Garuda.ttf",
    "/usr/share/fonts/truetype/tlwg/Loma.ttf",
    "/usr/share/fonts/opentype/tlwg/Garuda.otf",
    "/usr/share/fonts/opentype/tlwg/Loma.otf",
)


@dataclass(frozen=True)
class StampSpec:
    """Where and how to draw the stamp. ``page`` is 1-based; 0 means the last page."""

    page: int = 0
    #: (x1, y1, x2, y2) in points; None for the default box at the bottom right
    box: tuple[float, float, float, float] | None = None
    language: str = "th"
    include_qr_code: bool = False


def name_values(subject: object, attribute: str) -> list[str]:
    """Values of one attribute of an asn1crypto Name's ``.native`` dict (a certificate may carry
    several, e.g. the organisation in English and in Thai)."""
    value = subject.get(attribute) if isinstance(subject, dict) else None
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def pick_for_language(values: list[str], language: str) -> str:
    """The Thai value for a Thai stamp (else the first), the first non-Thai one otherwise."""
    if not values:
        return ""
    thai = [v for v in values if any("\u0e00" <= ch <= "\u0e7f" for ch in v)]
    other = [v for v in values if v not in thai]
    if language == "th":
        return (thai or values)[0]
    return (other or values)[0]


def stamp_lines(
    *, signer: str, organisation: str, when: datetime, reason: str, language: str
) -> list[str]:
    """The stamp's text, one entry per line (no formatting directives)."""
    th = language == "th"
    lines = [("ลงนามโดย " if th else "Signed by ") + signer]
    if organisation:
        lines.append(organisation)
    lines.append(("วันที่ " if th else "Date ") + format_date(when, language))
    if reason:
        lines.append(("เหตุผล " if th else "Reason ") + reason)
    return lines


def find_font(candidates: tuple[str, ...] = DEFAULT_THAI_FONTS) -> str:
    for path in candidates:
        if os.path.exists(path):
            return path
    raise FileNotFoundError("no Thai TLWG font found (install fonts-thai-tlwg)")


@lru_cache(maxsize=4)
def _font_factory(path: str, language: str) -> GlyphAccumulatorFactory:
    if language == "th":
        return GlyphAccumulatorFactory(path, ot_script_tag="thai", ot_language_tag="THA ")
    return GlyphAccumulatorFactory(path)


def stamp_style(
    lines: list[str], *, language: str, with_qr: bool, font_path: str | None = None
) -> TextStampStyle:
    """A pyHanko stamp style drawing ``lines`` (and the ``url`` text parameter as a QR code)."""
    # '%' starts a pyHanko text parameter: escape the user's text
    text = "\n".join(line.replace("%", "%%") for line in lines)
    box_style = TextBoxStyle(
        font=_font_factory(font_path or find_font(), language), font_size=9, leading=13
    )
    if with_qr:
        return QRStampStyle(stamp_text=text, text_box_style=box_style, border_width=1)
    return TextStampStyle(stamp_text=text, text_box_style=box_style, border_width=1)
