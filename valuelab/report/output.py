"""Write one report as the files an audit leaves behind: the page, the PDF, every number, every table."""

from __future__ import annotations

from pathlib import Path

from valuelab.report.html import appendix_tables, csv_name, write_html
from valuelab.report.model import Report
from valuelab.report.pdf import write_pdf
from valuelab.stats import display_frame


def write_tables(report: Report, out_dir: str | Path) -> list[Path]:
    """tables/NAME.csv for every table the appendix shows (the report links each one)."""
    paths = []
    for section in report.sections + report.appendix:
        for name, frame in appendix_tables(section):
            path = Path(out_dir) / "tables" / csv_name(section, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            display_frame(frame).to_csv(path, index=False)
            paths.append(path)
    return paths


def write_report(report: Report, out_dir: str | Path, *, pdf: bool = True,
                 pdf_engine: str = "auto") -> dict[str, Path]:
    """`report.html`, `report.pdf` (unless `pdf=False`), `results.json` and `tables/` in `out_dir`; returns the
    paths of the first three."""
    out = Path(out_dir)
    paths = {"html": write_html(report, out / "report.html"),
             "results": report.write_results(out / "results.json")}
    write_tables(report, out)
    if pdf:
        write_pdf(report, out / "report.pdf", engine=pdf_engine)
        paths["pdf"] = out / "report.pdf"
    return paths
