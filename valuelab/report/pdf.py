"""The report as PDF: the HTML page through WeasyPrint (`pip install valuelab[pdf]`, needs Pango), or,
where WeasyPrint is missing, matplotlib's PdfPages with text pages and figures laid out on A4.

Both put "Page i of n" on every page. WeasyPrint is given a fetcher that only accepts `data:` URLs, so
rendering cannot load anything from the network or the disk even if the page asked it to.
"""

from __future__ import annotations

import io
import logging
import textwrap
from collections.abc import Callable
from pathlib import Path

import matplotlib.image as mpimg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from valuelab.report.figures import INK, PALETTE
from valuelab.report.html import (
    fmt,
    headline_view,
    manifest_rows,
    number_rows,
    paragraphs,
    published_rows,
    render_html,
    table_view,
)
from valuelab.report.model import Report, Section, scrub_text

ENGINES = ("auto", "weasyprint", "matplotlib")
A4 = (8.27, 11.69)
MARGIN = 0.75
LINE = 1.45
"""Line height as a multiple of the font size."""


def weasyprint_available() -> bool:
    """WeasyPrint 68 or later (its URLFetcher class, which lets us refuse every load), with Pango."""
    try:
        from weasyprint.urls import URLFetcher  # noqa: F401
    except (ImportError, OSError):  # OSError: the Python package is there but Pango is not
        return False
    return True


def write_pdf(report: Report, path: str | Path, *, engine: str = "auto") -> str:
    """Write `report` to `path`; returns the engine used ("weasyprint" or "matplotlib")."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if engine == "weasyprint" or (engine == "auto" and weasyprint_available()):
        import weasyprint
        from weasyprint.urls import URLFetcher

        fetcher = URLFetcher(allowed_protocols={"data"})
        log = logging.getLogger("weasyprint")
        log.addFilter(_svg_style_noise)
        try:
            weasyprint.HTML(string=render_html(report), url_fetcher=fetcher).write_pdf(path)
        finally:
            log.removeFilter(_svg_style_noise)
        return "weasyprint"
    write_pdf_matplotlib(report, path)
    return "matplotlib"


def _svg_style_noise(record: logging.LogRecord) -> bool:
    """WeasyPrint's CSS parser reports SVG presentation properties (stroke, fill, ...) in matplotlib's style
    attributes as unknown, once per element, though its SVG renderer draws them: keep everything else."""
    return "unknown property" not in record.getMessage()


class _Pages:
    """Flows lines, tables and figures down A4 pages; each page is a list of draw calls until the end,
    when the page count is known."""

    def __init__(self) -> None:
        self.pages: list[list[Callable[[Figure], None]]] = []
        self.y = 0.0
        self.new_page()

    @property
    def width(self) -> float:
        return A4[0] - 2 * MARGIN

    def new_page(self) -> None:
        self.pages.append([])
        self.y = A4[1] - MARGIN

    def room(self, height: float) -> None:
        if self.y - height < MARGIN + 0.2:
            self.new_page()

    def text(self, text: str, *, size: float = 9.5, weight: str = "normal", color: str = INK,
             family: str = "sans-serif", gap: float = 0.0, indent: float = 0.0) -> None:
        """Wrapped text; the wrap width comes from the average glyph width of the face."""
        per_char = size / 72 * (0.6 if family == "monospace" else 0.52)
        width = max(int((self.width - indent) / per_char), 20)
        text = scrub_text(text)
        lines = [text] if family == "monospace" else textwrap.wrap(text, width) or [""]
        step = size * LINE / 72
        self.y -= gap
        for line in lines:
            self.room(step)
            y, x = self.y - size / 72, MARGIN + indent
            self.pages[-1].append(lambda fig, x=x, y=y, line=line: fig.text(
                x / A4[0], y / A4[1], line, fontsize=size, fontweight=weight, color=color, family=family,
                parse_math=False, va="baseline"))
            self.y -= step

    def rule(self, color: str = PALETTE[0], width: float = 1.5) -> None:
        y = self.y - 0.04
        self.pages[-1].append(lambda fig: fig.add_artist(Line2D(
            [MARGIN / A4[0], 1 - MARGIN / A4[0]], [y / A4[1]] * 2, color=color, linewidth=width,
            transform=fig.transFigure)))
        self.y -= 0.12

    def table(self, columns: list[str], rows: list[list[str]], numeric: list[bool]) -> None:
        """A fixed-width table: empty columns dropped, widths from the contents (capped), the font shrunk to
        fit the page, and the header repeated on every page the table runs onto."""
        keep = [i for i in range(len(columns)) if any(row[i] for row in rows)]
        cap = 32
        cells = [[row[i][:cap - 1] + "…" if len(row[i]) > cap else row[i] for i in keep]
                 for row in [columns, *rows]]
        widths = [max(len(row[k]) for row in cells) for k in range(len(keep))]
        size = 8.0
        while size > 5.5 and (sum(widths) + 2 * len(widths)) * size / 72 * 0.6 > self.width:
            size -= 0.5
        lines = ["  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                           for i, c, w in zip(keep, row, widths, strict=True)) for row in cells]
        step = size * LINE / 72
        self.room(2 * step)
        self.text(lines[0], size=size, family="monospace", weight="bold")
        for line in lines[1:]:
            if self.y - step < MARGIN + 0.2:
                self.new_page()
                self.text(lines[0], size=size, family="monospace", weight="bold")
            self.text(line, size=size, family="monospace")
        self.y -= 0.1

    def figure(self, fig: Figure, caption: str) -> None:
        """A figure raster at 200 dpi, scaled to the text width (or the page height), captioned."""
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=200)
        buffer.seek(0)
        image = mpimg.imread(buffer)
        height_px, width_px = image.shape[:2]
        width = self.width
        height = width * height_px / width_px
        limit = A4[1] - 2 * MARGIN - 0.8
        if height > limit:
            width, height = width * limit / height, limit
        self.room(height + 0.5)
        x, y = MARGIN + (self.width - width) / 2, self.y - height

        def draw(page: Figure) -> None:
            ax = page.add_axes((x / A4[0], y / A4[1], width / A4[0], height / A4[1]))
            ax.imshow(image)
            ax.set_axis_off()

        self.pages[-1].append(draw)
        self.y -= height + 0.08
        self.text(caption, size=8.5, color="#52606d")
        self.y -= 0.1

    def save(self, path: Path, title: str) -> None:
        total = len(self.pages)
        with PdfPages(path, metadata={"Title": scrub_text(title), "Creator": "valuelab"}) as pdf:
            for number, calls in enumerate(self.pages, start=1):
                page = Figure(figsize=A4)
                for call in calls:
                    call(page)
                page.text(1 - MARGIN / A4[0], MARGIN / 2 / A4[1], f"Page {number} of {total}", ha="right",
                          fontsize=8, color="#7b8794", parse_math=False)
                pdf.savefig(page)


def _section(pages: _Pages, section: Section, number: int, model_name: str, *, intro: bool = True) -> None:
    if intro:
        for paragraph in paragraphs(section.intro):
            pages.text(paragraph, gap=0.06)
    rows = number_rows(section.numbers)
    if rows:
        pages.text("Key numbers", size=10, weight="bold", gap=0.15)
        pages.table(["measure", "value", "95 % interval", "random baseline"],
                    [[r.name, r.value, r.interval, r.baseline] for r in rows], [False, True, True, True])
    for k, (caption, fig) in enumerate(section.figures, start=1):
        pages.figure(fig, f"Figure {number}.{k}. {caption}")
    for k, (caption, frame) in enumerate(section.tables, start=1):
        view = table_view(caption, frame)
        pages.text(f"Table {number}.{k}. {caption}", size=10, weight="bold", gap=0.15)
        pages.table(view.columns, view.rows, view.numeric)
        if view.note:
            pages.text(view.note, size=8, color="#52606d")
    published = published_rows(section, model_name)
    if published:
        pages.text("Published reference figures, for comparison", size=10, weight="bold", gap=0.15)
        pages.table(["measure", "model", "value", "source"],
                    [[r.metric, r.model, r.value, r.source] for r in published], [False, False, True, False])
    if section.notes:
        pages.text("Notes", size=10, weight="bold", gap=0.15)
        for note in section.notes:
            pages.text(f"• {note}", size=9, indent=0.15)


def write_pdf_matplotlib(report: Report, path: str | Path) -> None:
    """The fallback layout: summary, then one or more pages per section, then the manifest."""
    pages = _Pages()
    pages.text("VALUELAB AUDIT REPORT", size=9, weight="bold", color=PALETTE[0])
    pages.text(report.title, size=20, weight="bold", gap=0.05)
    pages.text(f"Model: {report.model_name}    Suite: {report.suite}    "
               f"Written: {fmt(report.manifest.get('written', ''))}", size=9.5, color="#52606d")
    pages.rule()
    pages.text(report.summary.title or "Summary", size=15, weight="bold", gap=0.1)
    for paragraph in paragraphs(report.summary.intro):
        pages.text(paragraph, gap=0.06)
    for item in map(headline_view, report.headline):
        pages.text(item["name"], size=10.5, weight="bold", gap=0.12)
        detail = (f"{item['value']}   95 % interval {item['interval'] or '—'}   "
                  f"random baseline {item['baseline'] or '—'}")
        pages.text(detail, size=10, color=PALETTE[0])
        if item["how_to_read"]:
            pages.text(item["how_to_read"], size=9, color="#3e4c59")
    pages.text("Each number comes with a 95 % bootstrap interval and the score of a random responder (a coin "
               "flip for every choice); an interval that overlaps the random baseline is no evidence of a "
               "consistent preference.", size=8.5, color="#52606d", gap=0.12)
    _section(pages, report.summary, 0, report.model_name, intro=False)
    for number, section in enumerate(report.sections, start=1):
        pages.new_page()
        pages.text(f"{number}. {section.title}", size=15, weight="bold")
        pages.rule(color="#d9e2ec", width=0.8)
        _section(pages, section, number, report.model_name)
    pages.new_page()
    pages.text("Run manifest", size=15, weight="bold")
    pages.rule(color="#d9e2ec", width=0.8)
    for row in manifest_rows(report.manifest):
        pages.text(f"{row.name}: {row.value}", size=8, family="sans-serif")
    pages.save(Path(path), f"{report.title} · {report.model_name}")
