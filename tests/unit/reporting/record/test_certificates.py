"""Certificate PDFs: rendered with fpdf2, parsed back with pypdf."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from prodigy_users.reporting.record.certificates import (
    CertificateData,
    amount,
    find_unicode_font,
    latin1,
    long_date,
    printable,
    render,
    worth,
)

A4_LANDSCAPE = (841.89, 595.28)  # points


def certificate(**changes: object) -> CertificateData:
    values: dict[str, object] = {
        "certificate_id": "cert-2026-000417",
        "department": "Springfield EMS",
        "person": "Ana Lima",
        "course": "CPR and AED for Healthcare Providers",
        "completed_on": date(2026, 11, 20),
        "hours": Decimal("4.5"),
        "credits": Decimal("0.5"),
    }
    values.update(changes)
    return CertificateData(**values)  # type: ignore[arg-type]


def pages(pdf: bytes) -> list[str]:
    assert pdf.startswith(b"%PDF-")
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_a_certificate_says_who_did_what_when_and_for_whom() -> None:
    pdf = render([certificate()])

    [text] = pages(pdf)
    assert "Certificate of Completion" in text
    assert "Ana Lima" in text
    assert "CPR and AED for Healthcare Providers" in text
    assert "20 November 2026" in text
    assert "4.5 contact hours" in text and "0.5 credits" in text
    assert "Issued by Springfield EMS" in text
    assert "Certificate ID: cert-2026-000417" in text


def test_a_certificate_is_one_landscape_a4_page_with_a_border() -> None:
    reader = PdfReader(io.BytesIO(render([certificate()])))

    [page] = reader.pages
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    assert (round(width, 1), round(height, 1)) == (
        round(A4_LANDSCAPE[0], 1),
        round(A4_LANDSCAPE[1], 1),
    )
    content = page.get_contents()
    assert content is not None
    # The double border: two rectangles ("re" operators) drawn with strokes.
    assert content.get_data().count(b" re") >= 2
    assert reader.metadata is not None
    assert reader.metadata.title == (
        "Certificate cert-2026-000417: CPR and AED for Healthcare Providers"
    )
    assert reader.metadata.author == "Springfield EMS"


def test_several_certificates_make_one_document_a_page_each_in_order() -> None:
    certificates = [
        certificate(certificate_id=f"cert-{n}", course=f"Course {n}", completed_on=date(2026, n, 1))
        for n in (3, 2, 1)
    ]

    texts = pages(render(certificates))

    assert len(texts) == 3
    for text, n in zip(texts, (3, 2, 1), strict=True):
        assert f"Certificate ID: cert-{n}" in text
        assert f"Course {n}" in text
        assert f"1 {['January', 'February', 'March'][n - 1]} 2026" in text


def test_no_certificates_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        render([])


def test_names_outside_latin1_degrade_without_the_unicode_font() -> None:
    person = "Łukasz Żółć 王芳"
    pdf = render([certificate(person=person, department="Třebíč — Záchranka")], font=None)

    [text] = pages(pdf)
    assert "Lukasz Zólc ??" in text, text
    assert "Issued by Trebíc - Záchranka" in text
    metadata = PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None and metadata.subject is not None
    assert metadata.subject.startswith(person), "the exact name stays in the metadata"


def test_names_outside_latin1_print_with_the_unicode_font() -> None:
    font = find_unicode_font()
    if font is None:
        pytest.skip("no DejaVu Sans installed by any package: the Unicode font path is untested")

    [text] = pages(render([certificate(person="Łukasz Żółć Иван 王芳")], font=font))

    # DejaVu draws Polish and Cyrillic; it has no CJK, which degrades instead of vanishing.
    assert "Łukasz Żółć Иван ??" in text, text


def test_a_very_long_course_title_still_fits_on_the_page() -> None:
    course = "Advanced Trauma Life Support " * 10
    [text] = pages(render([certificate(course=course.strip())]))
    assert "Certificate ID: cert-2026-000417" in text
    assert "Advanced" in text and "Trauma" in text


def test_printable_keeps_what_the_font_has_and_spells_out_the_rest() -> None:
    assert printable("Zoë O\u2019Brien", latin1) == "Zoë O'Brien"
    assert printable("Ana\nLima\t ", latin1) == "Ana Lima"
    assert printable("K\u0131r\u015fehir", latin1) == "Kirsehir"
    assert printable("王", latin1) == "?"
    assert printable("Straße", lambda c: c.isascii()) == "Strasse"


def test_numbers_and_dates_read_naturally() -> None:
    assert long_date(date(2026, 3, 4)) == "4 March 2026"
    assert amount(Decimal("4.50")) == "4.5"
    assert amount(Decimal("10.0")) == "10"
    assert amount(Decimal("1E+1")) == "10"
    assert amount(Decimal("0.125")) == "0.125"
    assert worth(certificate(hours=Decimal(1), credits=Decimal(0))) == "1 contact hour"
    assert worth(certificate(hours=Decimal(2), credits=Decimal(1))) == (
        "2 contact hours \u00b7 1 credit"
    )
