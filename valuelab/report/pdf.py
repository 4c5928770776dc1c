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
from valuelab.report.html import SectionView, manifest_rows, metric_row, render_html, section_view
from valuelab.report.model import Report, scrub_text
from valuelab.report.summary import verdict_sentences, what_was_asked

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


def _section(pages: _Pages, view: SectionView) -> None:
    if view.question:
        pages.text(view.question, size=10, color="#243b53", gap=0.04)
    if view.failed:
        pages.text(view.failed, color="#D55E00", gap=0.06)
    for paragraph in view.paragraphs:
        pages.text(paragraph, gap=0.06)
    if view.prompt:
        pages.text("One prompt as the model saw it:", size=8.5, weight="bold", gap=0.08)
        for line in view.prompt.splitlines()[:20]:
            pages.text(line[:110], size=7, family="monospace")
    if view.metrics:
        pages.text("Key numbers", size=10, weight="bold", gap=0.15)
        pages.table(["measure", "value", "95 % interval", "random responder", "verdict"],
                    [[r.name, r.value, r.interval, r.baseline, r.verdict] for r in view.metrics],
                    [False, True, True, True, False])
    if view.facts:
        pages.text(" · ".join(f"{name}: {value}" for name, value in view.facts), size=9, gap=0.04)
    for name, text in view.readings:
        pages.text(f"{name}. {text}", size=8.5, color="#3e4c59")
    if view.body_table is not None:
        pages.table(view.body_table.columns, view.body_table.rows, view.body_table.numeric)
    if view.figure is not None:
        pages.figure(view.figure[2], f"Figure {view.number}. {view.figure[0]}")
    if view.published:
        pages.text("Published reference values", size=10, weight="bold", gap=0.15)
        pages.table(["measure", "model", "value", "source"],
                    [[r.metric, r.model, r.value, r.source] for r in view.published], [False, False, True, False])
    if view.notes:
        pages.text("Caveats", size=10, weight="bold", gap=0.15)
        for note in view.notes:
            pages.text(f"• {note}", size=9, indent=0.15)


def write_pdf_matplotlib(report: Report, path: str | Path) -> None:
    """The fallback layout: the executive summary, one section after another, then the appendix tables."""
    pages = _Pages()
    pages.text(f"VALUELAB {report.kind.upper()} REPORT", size=9, weight="bold", color=PALETTE[0])
    pages.text(report.title, size=20, weight="bold", gap=0.05)
    pages.rule()
    pages.text("Executive summary", size=15, weight="bold", gap=0.1)
    if report.overview:
        pages.text(report.overview, gap=0.06)
    for name, value in what_was_asked(report):
        pages.text(f"{name}: {value}", size=9)
    for sentence in verdict_sentences(report):
        pages.text(f"• {sentence}", size=9.5, indent=0.15, gap=0.04)
    if report.headline:
        pages.text("Headline measures", size=10, weight="bold", gap=0.15)
        rows = [(s.title, metric_row(m, kind=report.kind)) for s, m in report.headline]
        pages.table(["analysis", "value", "95 % interval", "random responder", "verdict"],
                    [[title, r.value, r.interval, r.baseline, r.verdict] for title, r in rows],
                    [False, True, True, True, False])
    views = [section_view(s, k, report.model_name, svg=False, kind=report.kind)
             for k, s in enumerate(report.sections, start=1)]
    views += [section_view(s, len(views) + k, report.model_name, svg=False, kind=report.kind)
              for k, s in enumerate(report.appendix, start=1)]
    for view in views[:len(report.sections)]:
        pages.new_page()
        pages.text(f"{view.number}. {view.title}", size=15, weight="bold")
        pages.rule(color="#d9e2ec", width=0.8)
        _section(pages, view)
    pages.new_page()
    pages.text("Appendix", size=15, weight="bold")
    pages.rule(color="#d9e2ec", width=0.8)
    for view in views:
        for table in view.tables:
            pages.text(f"{table.number} {table.caption}", size=10, weight="bold", gap=0.15)
            pages.table(table.columns, table.rows, table.numeric)
            if table.note:
                pages.text(table.note, size=8, color="#52606d")
    pages.text("Run manifest", size=10, weight="bold", gap=0.15)
    for name, value in manifest_rows(report.manifest):
        pages.text(f"{name}: {value}", size=8, family="sans-serif")
    pages.save(Path(path), report.title)
