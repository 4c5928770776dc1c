"""Figures into reports: safe inline SVG (the style, palette and baseline marker live in valuelab/figures.py).

SVG is written with `svg.fonttype = "none"`: text stays `<text>` (selectable, searchable, small) and the
viewer draws it with a local font from the generic stack, so no font is embedded or fetched. Before the
SVG goes into a page it is parsed and checked: no scripts, no event handlers, no links outside itself.
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET

import matplotlib as mpl
from matplotlib.figure import Figure

from valuelab.figures import BASELINE_COLOR, INK, PALETTE, STYLE, baseline, new_figure, styled

__all__ = ["BASELINE_COLOR", "INK", "PALETTE", "STYLE", "UnsafeSVGError", "baseline", "check_svg", "new_figure",
           "styled", "to_svg"]

_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_FORBIDDEN_TAGS = {"script", "foreignObject", "iframe", "object", "embed", "a"}
_RASTER = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=\s]*")
"""Matplotlib embeds images (imshow, some colour bars) as inline PNG: the one non-local href allowed."""


class UnsafeSVGError(ValueError):
    """An SVG that could run code or load something from outside the page."""


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
