"""Figures for reports: one style, one palette, a random-baseline marker, and safe inline SVG.

SVG is written with `svg.fonttype = "none"`: text stays `<text>` (selectable, searchable, small) and the
viewer draws it with a local font from the generic stack, so no font is embedded or fetched. Before the
SVG goes into a page it is parsed and checked: no scripts, no event handlers, no links outside itself.
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET
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

_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_FORBIDDEN_TAGS = {"script", "foreignObject", "iframe", "object", "embed", "a"}
_RASTER = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=\s]*")
"""Matplotlib embeds images (imshow, some colour bars) as inline PNG: the one non-local href allowed."""


class UnsafeSVGError(ValueError):
    """An SVG that could run code or load something from outside the page."""


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


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def check_svg(root: ET.Element) -> None:
    """Raise UnsafeSVGError for scripts, embedded documents, event handlers or references leaving the SVG."""
    for element in root.iter():
        if _local_name(element.tag) in _FORBIDDEN_TAGS:
            raise UnsafeSVGError(f"SVG contains a <{_local_name(element.tag)}> element")
        for name, value in element.attrib.items():
            local = _local_name(name).lower()
            if local.startswith("on"):
                raise UnsafeSVGError(f"SVG contains an event handler {local!r}")
            inline_image = _local_name(element.tag) == "image" and _RASTER.fullmatch(value)
            if local in ("href", "src") and not (value.startswith("#") or inline_image):
                raise UnsafeSVGError(f"SVG refers outside itself: {value!r}")
            if re.search(r"url\(\s*['\"]?(?!#)", value):
                raise UnsafeSVGError(f"SVG style refers outside itself: {value!r}")
        is_style = _local_name(element.tag) == "style"
        if is_style and re.search(r"url\(\s*['\"]?(?!#)|@import", element.text or ""):
            raise UnsafeSVGError("SVG stylesheet refers outside itself")


def to_svg(fig: Figure) -> str:
    """`fig` as an inline `<svg>` element that scales to the column width but no wider than drawn.

    Matplotlib escapes text it writes; the result is still parsed, checked and re-serialised, so what
    reaches the page is well-formed XML with no active content whatever the labels contained.
    """
    buffer = io.BytesIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "valuelab"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    root = ET.fromstring(buffer.getvalue())
    for metadata in root.findall(f"{{{_SVG_NS}}}metadata"):
        root.remove(metadata)
    check_svg(root)
    _scope_ids(root, "f" + hashlib.sha1(buffer.getvalue()).hexdigest()[:8] + "-")
    width = root.attrib.pop("width", None)
    root.attrib.pop("height", None)
    root.set("width", "100%")
    root.set("role", "img")
    if width:
        root.set("style", f"max-width: {width}")
    return ET.tostring(_plain_names(root), encoding="unicode")


def _scope_ids(root: ET.Element, prefix: str) -> None:
    """Matplotlib names its groups `figure_1`, `text_3`, ... in every figure; inline in one page they would
    collide. Ids nothing points at are dropped, the rest get a prefix unique to this figure's content."""
    reference = re.compile(r"url\(#([^)]+)\)")
    used = set()
    for element in root.iter():
        for name, value in element.attrib.items():
            if _local_name(name) == "href" and value.startswith("#"):
                used.add(value[1:])
            used.update(reference.findall(value))
    for element in root.iter():
        if "id" in element.attrib:
            if element.attrib["id"] in used:
                element.set("id", prefix + element.attrib["id"])
            else:
                del element.attrib["id"]
        for name, value in element.attrib.items():
            if _local_name(name) == "href" and value.startswith("#"):
                element.set(name, "#" + prefix + value[1:])
            elif "url(#" in value:
                element.set(name, reference.sub(lambda m: f"url(#{prefix}{m.group(1)})", value))


def _plain_names(root: ET.Element) -> ET.Element:
    """Write namespaces out by hand (`svg` default, `xlink:` prefix), so the output does not depend on
    ElementTree's global prefix registry, which other libraries may change."""
    for element in root.iter():
        element.tag = _local_name(element.tag)
        for name in [n for n in element.attrib if n.startswith(f"{{{_XLINK_NS}}}")]:
            element.set(f"xlink:{_local_name(name)}", element.attrib.pop(name))
    root.set("xmlns", _SVG_NS)
    root.set("xmlns:xlink", _XLINK_NS)
    return root
