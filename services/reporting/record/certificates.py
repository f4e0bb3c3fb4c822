"""Certificates as PDF documents (fpdf2): data in, bytes out.

A certificate is one landscape A4 page with a double border: the title, the
person, the course, the day it was completed, its hours and credits, the
department that issues it and the certificate id. Several certificates are one
document, a page each.

Text needs a font that has its characters. The PDF core fonts only cover
Latin-1, so a Unicode TrueType font (DejaVu Sans) is embedded when one is
installed (``find_unicode_font``: a Python package that ships it, or the
operating system's font package). Without one, or for characters even that
font lacks, text degrades instead of failing: accents the core fonts lack are
dropped (``Ł`` becomes ``L``), anything else becomes ``?``. The names as they
really are stay in the document's metadata, which is always Unicode.

Control characters never reach the page or the metadata: names stored before the
API refused them (and course titles from other systems) go through
``runtime.text.plain_text`` first. A PDF runs no formulas, so nothing is quoted.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from prodigy_users.runtime.text import plain_text

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Characters with no decomposition to a Latin-1 letter, and typographic marks.
_FALLBACKS = {
    "\u0141": "L",  # L with stroke
    "\u0142": "l",
    "\u0110": "D",  # D with stroke
    "\u0111": "d",
    "\u0126": "H",  # H with stroke
    "\u0127": "h",
    "\u0131": "i",  # dotless i
    "\u0152": "OE",
    "\u0153": "oe",
    "\u00df": "ss",
    "\u2010": "-",  # hyphens and dashes
    "\u2011": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2018": "'",  # quotation marks
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2026": "...",
}

_INK = (28, 45, 84)  # dark blue: borders and the title
_TEXT = (40, 40, 40)


@dataclass(frozen=True)
class CertificateData:
    """What one certificate says."""

    certificate_id: str
    department: str
    person: str
    course: str
    completed_on: date
    hours: Decimal
    credits: Decimal


@dataclass(frozen=True)
class UnicodeFont:
    """A TrueType family to embed: regular and bold faces."""

    regular: Path
    bold: Path


# Where DejaVu Sans is when a package installed it: matplotlib ships it, and the
# Debian/Ubuntu, Fedora, Arch and Alpine font packages put it here.
_SYSTEM_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/share/fonts/dejavu"),
)


def _package_font_dirs() -> list[Path]:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) / "mpl-data" / "fonts" / "ttf" for p in spec.submodule_search_locations]


@cache
def find_unicode_font() -> UnicodeFont | None:
    """DejaVu Sans (regular and bold) if a package installed it, else None."""
    for directory in (*_package_font_dirs(), *_SYSTEM_FONT_DIRS):
        regular, bold = directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return UnicodeFont(regular, bold)
    return None


def printable(text: str, supports: Callable[[str], bool]) -> str:
    """``text`` with every character the font cannot draw replaced by its nearest
    drawable form (accents dropped, a few letters and marks spelt out) or ``?``.

    Line breaks and other control characters become spaces: names are one line.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        if unicodedata.category(char).startswith("C") or char.isspace():
            out.append(" ")
        elif supports(char):
            out.append(char)
        else:
            stripped = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            for alternative in (_FALLBACKS.get(char, ""), stripped):
                if alternative and all(supports(c) for c in alternative):
                    out.append(alternative)
                    break
            else:
                out.append("?")
    return " ".join("".join(out).split())


def latin1(char: str) -> bool:
    """Whether the PDF core fonts can draw ``char``."""
    return ord(char) < 0x100 and char.isprintable()


def long_date(day: date) -> str:
    """``20 November 2026``, in English whatever the process locale."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def amount(value: Decimal) -> str:
    """``4.5`` for 4.50, ``10`` for 10.0: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def worth(data: CertificateData) -> str:
    """The hours (and credits, when there are any) line."""
    hours = f"{amount(data.hours)} contact hour{'' if data.hours == 1 else 's'}"
    if not data.credits:
        return hours
    return f"{hours} \u00b7 {amount(data.credits)} credit{'' if data.credits == 1 else 's'}"


class _Document:
    """One PDF under construction, with the font it draws in."""

    def __init__(self, font: UnicodeFont | None) -> None:
        # fpdf2 is imported with the first certificate, not with the service (a quarter
        # of a second of every start).
        from fpdf import FPDF

        self.pdf = FPDF(orientation="L", unit="mm", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(25, 20, 25)
        self.pdf.set_creator("prodigy-users reporting")
        if font is None:
            self.family = "Helvetica"
            self._supports: Callable[[str], bool] = latin1
        else:
            self.family = "DejaVu"
            self.pdf.add_font(self.family, "", str(font.regular))
            self.pdf.add_font(self.family, "B", str(font.bold))
            self.pdf.set_font(self.family, "", 12)
            cmap = self.pdf.current_font.cmap  # type: ignore[union-attr]
            self._supports = lambda c: ord(c) in cmap and c.isprintable()

    def text(self, value: str) -> str:
        return printable(value, self._supports)

    def line(self, value: str, size: float, *, bold: bool = False, height: float = 0) -> None:
        """One centred line, shrunk to fit the page's width (down to 60 %)."""
        style = "B" if bold else ""
        text = self.text(value)
        self.pdf.set_font(self.family, style, size)
        width = self.pdf.w - self.pdf.l_margin - self.pdf.r_margin
        while self.pdf.get_string_width(text) > width and self.pdf.font_size_pt > size * 0.6:
            self.pdf.set_font(self.family, style, self.pdf.font_size_pt - 1)
        from fpdf.enums import XPos, YPos

        self.pdf.multi_cell(
            0,
            height or self.pdf.font_size * 1.5,
            text,
            align="C",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def page(self, data: CertificateData) -> None:
        pdf = self.pdf
        pdf.add_page()
        pdf.set_draw_color(*_INK)
        pdf.set_line_width(1.6)
        pdf.rect(8, 8, pdf.w - 16, pdf.h - 16)
        pdf.set_line_width(0.4)
        pdf.rect(12, 12, pdf.w - 24, pdf.h - 24)

        pdf.set_y(36)
        pdf.set_text_color(*_INK)
        self.line("Certificate of Completion", 34, bold=True, height=18)
        pdf.set_text_color(*_TEXT)
        pdf.ln(10)
        self.line("This certifies that", 14)
        pdf.ln(3)
        self.line(data.person, 28, bold=True, height=14)
        pdf.ln(3)
        self.line("has completed the course", 14)
        pdf.ln(3)
        self.line(data.course, 20, bold=True, height=10)
        pdf.ln(6)
        self.line(f"on {long_date(data.completed_on)}", 14)
        self.line(worth(data), 12)

        pdf.set_line_width(0.3)
        pdf.line(pdf.w / 2 - 45, pdf.h - 54, pdf.w / 2 + 45, pdf.h - 54)
        pdf.set_y(pdf.h - 52)
        self.line(f"Issued by {data.department}", 14, bold=True)
        self.line(f"Certificate ID: {data.certificate_id}", 10)


def _without_controls(data: CertificateData) -> CertificateData:
    return replace(
        data,
        certificate_id=plain_text(data.certificate_id),
        department=plain_text(data.department),
        person=plain_text(data.person),
        course=plain_text(data.course),
    )


def render(certificates: Sequence[CertificateData], *, font: UnicodeFont | None = None) -> bytes:
    """The certificates as one PDF, a page each, in the order given.

    ``font``: a Unicode TrueType family to embed (see ``find_unicode_font``); None
    draws in the core Helvetica, degrading characters outside Latin-1.
    """
    if not certificates:
        raise ValueError("a certificate document needs at least one certificate")
    certificates = [_without_controls(c) for c in certificates]
    document = _Document(font)
    first = certificates[0]
    pdf = document.pdf
    # Metadata strings are Unicode whatever the font: the names stay exact here.
    if len(certificates) == 1:
        pdf.set_title(f"Certificate {first.certificate_id}: {first.course}")
    else:
        pdf.set_title(f"Certificates of {first.person}")
    pdf.set_author(first.department)
    pdf.set_subject(f"{first.person}: " + "; ".join(c.course for c in certificates))
    for data in certificates:
        document.page(data)
    return bytes(pdf.output())
