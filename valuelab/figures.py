"""One look for every figure valuelab draws: palette, style, a figure factory and the random-baseline marker.

Analyses, frameworks and reports all draw with these, so a figure looks the same in a notebook and in a report.
Figures are made without pyplot (no global backend state); draw inside `styled()` for the style to apply,
since matplotlib reads its settings when each artist is created.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999933")
INK = "#1f2933"
BASELINE_COLOR = "#6b7280"
SANS = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "sans-serif"]

STYLE = {
    "font.family": "sans-serif", "font.sans-serif": SANS, "font.size": 9.0,
    "axes.titlesize": 10.5, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.labelsize": 9.0, "axes.edgecolor": "#9aa5b1", "axes.labelcolor": INK,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e4e7eb", "grid.linewidth": 0.6, "axes.axisbelow": True,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "xtick.color": INK, "ytick.color": INK, "text.color": INK,
    "legend.frameon": False, "legend.fontsize": 8.0,
    "figure.figsize": (6.4, 3.6), "figure.dpi": 100, "figure.facecolor": "white",
    "svg.fonttype": "none", "svg.hashsalt": "valuelab",
}

@contextmanager
def styled() -> Iterator[None]:
    """Draw inside this block for the report style: matplotlib reads rcParams when artists are created."""
    with mpl.rc_context(STYLE):
        yield


def new_figure(width: float = 6.4, height: float = 3.6, **subplots) -> tuple[Figure, Axes]:
    """A styled figure without pyplot (no global backend state); keep drawing inside `styled()`."""
    with styled():
        fig = Figure(figsize=(width, height), layout="constrained")
        return fig, fig.subplots(**subplots)


def baseline(ax: Axes, value: float, lo: float | None = None, hi: float | None = None, *,
             axis: str = "y", label: str | None = "random responder") -> None:
    """The random responder's score as a dashed line, with its 95 % range as a band when given.

    `axis="y"` draws a horizontal line at y = value; `axis="x"` a vertical one at x = value.
    """
    line, band = (ax.axhline, ax.axhspan) if axis == "y" else (ax.axvline, ax.axvspan)
    if lo is not None and hi is not None:
        band(lo, hi, color=BASELINE_COLOR, alpha=0.12, linewidth=0, zorder=0)
    line(value, color=BASELINE_COLOR, linestyle=(0, (4, 3)), linewidth=1.1, label=label, zorder=1)
