"""valuelab.report: audit reports as standalone HTML, PDF and results.json.

    >>> from valuelab.report import Report, Section, write_report
    >>> write_report(Report("Value audit", "smollm2", "quick", Section("summary", "Summary")), "reports/x")
"""

from valuelab.report.compare import compare_reports
from valuelab.report.figures import baseline, new_figure, styled, to_svg
from valuelab.report.html import render_html, write_html
from valuelab.report.model import Report, Section, scrub
from valuelab.report.output import write_report
from valuelab.report.pdf import write_pdf

__all__ = [
    "Report", "Section", "baseline", "compare_reports", "new_figure", "render_html", "scrub", "styled",
    "to_svg", "write_html", "write_pdf", "write_report",
]
