"""The layout checkers in tests/layout.py, each shown to catch its defect on a tiny page and to pass a good one."""

from __future__ import annotations

import pytest
from layout import (
    PT_PER_MM,
    beyond_right_margin,
    console_errors,
    headings_at_page_bottom,
    large_numbers,
    last_line_text,
    lines,
    overflowing,
    pdf_words,
)

# The real reports' policy: no scripts at all, so overflowing() must take it out of its copy to measure.
CSP = ("""<meta http-equiv="Content-Security-Policy" """
       """content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">""")


def page(body: str, head: str = CSP) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">{head}<title>t</title>
<style>body {{ margin: 0; }} main {{ width: 600px; margin: 0 auto; }} td {{ border: 1px solid; }}</style></head>
<body><main><h1>Report</h1>{body}<p>End.</p></main></body></html>"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- HTML -----------------------------------------------------------------------------------------------------


GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="


@pytest.mark.parametrize("body, expected", [
    ('<table id="wide" style="width: 3000px"><caption>Utilities by model</caption><tr><td>a</td></tr></table>',
     ['table#wide "Utilities by model": scrollWidth 3000, clientWidth 3000, sticks out 2400 px past main']),
    # Scrolling keeps the <pre>'s box inside main; its scrollWidth still shows the text hidden off to the right.
    ('<pre class="log x" style="overflow: auto">' + "token " * 200 + "</pre>", ['pre.log.x "token token']),
    ('<div style="overflow-x: auto"><table id="t" style="width: 900px"><tr><td>cell</td></tr></table></div>',
     ['table#t "cell": scrollWidth 900, clientWidth 900, sticks out 300 px past its clipping container']),
    (f'<img src="{GIF}" alt="A dot" style="width: 800px"><svg width="700" height="9"></svg>',
     ['img "A dot": scrollWidth 800, clientWidth 800, sticks out 200 px', 'svg "": scrollWidth 700']),
], ids=["table", "pre", "scroll-wrapper", "img-svg"])
def test_overflowing_reports_what_is_wider_than_its_container(tmp_path, body, expected):
    found = overflowing(write(tmp_path, "wide.html", page(body)), tmp_path)
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True)), found


def test_overflowing_passes_a_page_that_fits(tmp_path):
    narrow = page('<figure><svg width="500" height="100" xmlns="http://www.w3.org/2000/svg"></svg>'
                  '<figcaption>Fits</figcaption></figure><table style="width: 100%"><tr><td>a</td></tr></table>'
                  "<pre>short</pre>")
    assert overflowing(write(tmp_path, "narrow.html", narrow), tmp_path) == []


def test_overflowing_measures_at_the_given_window_width(tmp_path):
    fluid = page('<table id="t" style="width: 900px"><tr><td>a</td></tr></table>').replace(
        "main { width: 600px;", "main { max-width: 100%;")
    path = write(tmp_path, "fluid.html", fluid)
    assert overflowing(path, tmp_path, width=1280) == []
    assert [f.split(" ")[0] for f in overflowing(path, tmp_path, width=700)] == ["table#t"]


@pytest.mark.parametrize("body, head, expected", [
    ("<script>console.error('boom')</script>", "", "console.error: boom"),
    ("<script>throw new Error('thrown')</script>", "", "Uncaught Error: thrown"),
    ("<script>console.log('fine')</script>", CSP, "Content Security Policy"),  # the report's CSP blocks it
    ('<img src="missing.png" alt="">', CSP, "missing.png"),
    ('<img src="missing.png" alt="">', "", "missing.png"),
], ids=["console.error", "exception", "csp-blocked-script", "csp-blocked-image", "missing-file"])
def test_console_errors_reports_errors(tmp_path, body, head, expected):
    errors = console_errors(write(tmp_path, "bad.html", page(body, head)), tmp_path)
    assert len(errors) == 1 and expected in errors[0], errors


def test_console_errors_passes_a_clean_page_and_ignores_other_levels(tmp_path):
    assert console_errors(write(tmp_path, "clean.html", page("<p>Fine.</p>")), tmp_path) == []
    chatty = page("<script>console.log('a'); console.info('b'); console.warn('c')</script>", head="")
    assert console_errors(write(tmp_path, "chatty.html", chatty), tmp_path) == []


# --- PDF ------------------------------------------------------------------------------------------------------

MARGIN_MM = 20
PDF_CSS = f"""<style>
@page {{ size: A4; margin: {MARGIN_MM}mm; @top-center {{ content: "Running header" }}
        @bottom-center {{ content: "Page " counter(page) " of " counter(pages) }} }}
body {{ font: 11pt sans-serif; }}
</style>"""


def pdf(tmp_path, name: str, body: str):
    weasyprint = pytest.importorskip("weasyprint")
    path = tmp_path / name
    weasyprint.HTML(string=f"<!doctype html><html><head>{PDF_CSS}</head><body>{body}</body></html>").write_pdf(path)
    return path


def test_pdf_words_reads_pages_boxes_and_escaped_text(tmp_path):
    pages = pdf_words(pdf(tmp_path, "words.pdf", '<p>R&amp;D &lt;ok&gt;</p><p style="break-before: page">Two</p>'))
    assert [p.number for p in pages] == [1, 2]
    assert pages[0].width == pytest.approx(595.3, abs=0.5) and pages[0].height == pytest.approx(841.9, abs=0.5)
    body = [[w.text for w in line] for line in lines(pages[0])]
    assert body == [["Running", "header"], ["R&D", "<ok>"], ["Page", "1", "of", "2"]], body
    word = lines(pages[0])[1][0]
    assert MARGIN_MM * PT_PER_MM - 1 < word.x_min < word.x_max < pages[0].width - MARGIN_MM * PT_PER_MM
    assert last_line_text(pages[0]) == "R&D <ok>" and last_line_text(pages[1]) == "Two"


def test_beyond_right_margin_reports_text_pushed_past_the_margin(tmp_path):
    line = "An unbreakable line of words that is much wider than the text block of an A4 page allows"
    pages = pdf_words(pdf(tmp_path, "wide.pdf", f'<p>Fine.</p><p style="white-space: nowrap">{line}</p>'))
    found = beyond_right_margin(pages, MARGIN_MM * PT_PER_MM)
    assert found and all(f.startswith("page 1: '") for f in found), found
    assert "'Fine.'" not in " ".join(found) and "'An'" not in " ".join(found)


def test_beyond_right_margin_passes_wrapped_text(tmp_path):
    text = "A paragraph of ordinary words that wraps inside the text block. " * 20
    pages = pdf_words(pdf(tmp_path, "normal.pdf", f"<p>{text}</p>"))
    assert len(lines(pages[0])) > 5
    assert beyond_right_margin(pages, MARGIN_MM * PT_PER_MM) == []


FILLER = "".join(f"<p>Paragraph {i} of filler text that takes one line.</p>" for i in range(8))


def test_headings_at_page_bottom_reports_a_stranded_heading(tmp_path):
    body = f'{FILLER}<h2 style="break-after: page">Robustness  checks</h2><p>Its text, on the next page.</p>'
    pages = pdf_words(pdf(tmp_path, "stranded.pdf", body))
    assert last_line_text(pages[0]) == "Robustness checks"  # the "Page 1 of 2" footer below it is skipped
    found = headings_at_page_bottom(pages, ["Summary", "Robustness checks"])
    assert found == ["page 1 ends with heading 'Robustness checks' (last line 'Robustness checks')"]


def test_headings_at_page_bottom_passes_a_heading_followed_by_text(tmp_path):
    body = f'{FILLER}<h2>Robustness checks</h2><p style="break-after: page">Its text.</p><p>More.</p>'
    pages = pdf_words(pdf(tmp_path, "kept.pdf", body))
    assert len(pages) == 2 and last_line_text(pages[0]) == "Its text."
    assert headings_at_page_bottom(pages, ["Robustness checks", ""]) == []


def test_large_numbers():
    text = ("fit 6.19e+259, r = 0.774, n = 1,234, mean 1.26e+04, low \u22123.2e+20, id 12345678901234567890, "
            "total 1,234,567,890,123,456, hash a1234567890123456789, year 2024.")
    assert large_numbers(text) == ["6.19e+259", "\u22123.2e+20", "12345678901234567890", "1,234,567,890,123,456"]
    assert large_numbers("0.774 and 1,234") == []
    assert large_numbers("1.26e+04 and 999", limit=1e4) == ["1.26e+04"]
