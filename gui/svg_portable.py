"""Qt's SVG made to render alike everywhere: cosmetic strokes in page coordinates, rasters pre-scaled.

QSvgGenerator writes a cosmetic pen as `vector-effect="non-scaling-stroke"` on a path drawn in item
coordinates inside a group whose transform maps them to the page (x62 for a heatmap, x300 for a probe
plot). Browsers honour the vector effect; librsvg (the renderer of Inkscape and of LaTeX toolchains) does
not, and scales a 1.5 px line into a wide bar. Applying the group's transform to the coordinates gives the
same picture under an identity transform, which every renderer draws alike (Qt writes such shapes as
paths with absolute M, L, C, Z commands, or as polylines).

Raster images (heatmap cells, token maps, small generated images) are embedded at their own resolution and
magnified by the renderer, which librsvg smooths whatever `image-rendering` says: each is replaced by a
nearest-neighbour enlargement to at least its size on the page, so cells stay crisp.
"""
from __future__ import annotations

import base64
import math
import re
import xml.etree.ElementTree as ET

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage

SVG_NS, XLINK_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

_MATRIX = re.compile(r"matrix\(([^)]*)\)")
_PAIR = re.compile(r"(-?[0-9.]+(?:e[-+]?[0-9]+)?),(-?[0-9.]+(?:e[-+]?[0-9]+)?)")
_SHAPES = {f"{{{SVG_NS}}}path": "d", f"{{{SVG_NS}}}polyline": "points", f"{{{SVG_NS}}}polygon": "points"}
_RECT, _ELLIPSE = f"{{{SVG_NS}}}rect", f"{{{SVG_NS}}}ellipse"
_GROUP, _IMAGE, _HREF = f"{{{SVG_NS}}}g", f"{{{SVG_NS}}}image", f"{{{XLINK_NS}}}href"
_IDENTITY = "matrix(1,0,0,1,0,0)"
_PNG_PREFIX = "data:image/png;base64,"
MAX_PIXELS = 16_000_000  # per enlarged image: a page-sized raster at 4x is ~6 Mpx
Matrix = tuple[float, float, float, float, float, float]


def portable(svg: str) -> str:
    root = ET.fromstring(svg)
    _walk(root, (1.0, 0.0, 0.0, 1.0, 0.0, 0.0))
    return '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + ET.tostring(root, encoding="unicode")


def _walk(element: ET.Element, outer: Matrix) -> None:
    """Depth first, carrying the transform of the enclosing groups (Qt nests one level of them)."""
    for child in element:
        if child.tag == _GROUP:
            _flatten_group(child)
            _walk(child, _compose(outer, _matrix(child)))
        elif child.tag == _IMAGE:
            _enlarge(child, outer)


def _matrix(group: ET.Element) -> Matrix:
    match = _MATRIX.fullmatch(group.get("transform", "").strip())
    if match is None:
        return (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    a, b, c, d, e, f = (float(v) for v in match.group(1).split(","))
    return a, b, c, d, e, f


def _compose(outer: Matrix, inner: Matrix) -> Matrix:
    a1, b1, c1, d1, e1, f1 = outer
    a2, b2, c2, d2, e2, f2 = inner
    return (a1 * a2 + c1 * b2, b1 * a2 + d1 * b2, a1 * c2 + c1 * d2, b1 * c2 + d1 * d2,
            a1 * e2 + c1 * f2 + e1, b1 * e2 + d1 * f2 + f1)


def _flatten_group(group: ET.Element) -> None:
    """A group holding only cosmetic strokes: its transform moves into their coordinates (rectangles become
    paths; ellipses are mapped where the transform keeps axes, as plot transforms do)."""
    children = list(group)
    if not children or _MATRIX.fullmatch(group.get("transform", "").strip()) is None:
        return
    a, b, c, d, e, f = _matrix(group)
    shapes = (*_SHAPES, _RECT) + ((_ELLIPSE,) if b == c == 0 else ())
    if not all(child.tag in shapes and child.get("vector-effect") == "non-scaling-stroke" for child in children):
        return

    def mapped(pair: re.Match) -> str:
        x, y = float(pair.group(1)), float(pair.group(2))
        return f"{a * x + c * y + e:.6g},{b * x + d * y + f:.6g}"

    for child in children:
        if child.tag == _RECT:
            _rect_to_path(child)
        if child.tag == _ELLIPSE:
            cx, cy = (float(child.get(name, 0)) for name in ("cx", "cy"))
            child.set("cx", f"{a * cx + e:.6g}")
            child.set("cy", f"{d * cy + f:.6g}")
            child.set("rx", f"{abs(a) * float(child.get('rx', 0)):.6g}")
            child.set("ry", f"{abs(d) * float(child.get('ry', 0)):.6g}")
            continue
        attribute = _SHAPES[child.tag]
        child.set(attribute, _PAIR.sub(mapped, child.get(attribute, "")))
    group.set("transform", _IDENTITY)


def _rect_to_path(rect: ET.Element) -> None:
    x, y, w, h = (float(rect.get(name, 0)) for name in ("x", "y", "width", "height"))
    for name in ("x", "y", "width", "height"):
        rect.attrib.pop(name, None)
    rect.tag = f"{{{SVG_NS}}}path"
    rect.set("d", f"M{x:g},{y:g} L{x + w:g},{y:g} L{x + w:g},{y + h:g} L{x:g},{y + h:g} Z")


def _enlarge(image: ET.Element, transform: Matrix) -> None:
    """Replace an embedded PNG by its nearest-neighbour enlargement to at least its size on the page."""
    href = image.get(_HREF, "")
    if not href.startswith(_PNG_PREFIX):
        return
    raster = QImage.fromData(base64.b64decode(href[len(_PNG_PREFIX):]), "PNG")
    if raster.isNull():
        return
    a, b, c, d, _, _ = transform
    page_w = float(image.get("width", 0)) * math.hypot(a, b)
    page_h = float(image.get("height", 0)) * math.hypot(c, d)
    fx, fy = max(1, math.ceil(page_w / raster.width())), max(1, math.ceil(page_h / raster.height()))
    if (fx, fy) == (1, 1) or raster.width() * fx * raster.height() * fy > MAX_PIXELS:
        return
    big = raster.scaled(raster.width() * fx, raster.height() * fy, Qt.AspectRatioMode.IgnoreAspectRatio,
                        Qt.TransformationMode.FastTransformation)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    big.save(buffer, "PNG")
    image.set(_HREF, _PNG_PREFIX + base64.b64encode(bytes(data)).decode("ascii"))
