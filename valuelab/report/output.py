"""Write one report as the three files an audit leaves behind."""

from __future__ import annotations

from pathlib import Path

from valuelab.report.html import write_html
from valuelab.report.model import Report
from valuelab.report.pdf import write_pdf


def write_report(report: Report, out_dir: str | Path, *, pdf: bool = True,
                 pdf_engine: str = "auto") -> dict[str, Path]:
    """`report.html`, `report.pdf` (unless `pdf=False`) and `results.json` in `out_dir`; returns the paths."""
    out = Path(out_dir)
    paths = {"html": write_html(report, out / "report.html"),
             "results": report.write_results(out / "results.json")}
    if pdf:
        write_pdf(report, out / "report.pdf", engine=pdf_engine)
        paths["pdf"] = out / "report.pdf"
    return paths
