"""Server-side SVG of a process from its BPMN DI (shapes and edges), with completed, active and
incident nodes marked by CSS classes (no inline styles or scripts, so the CSP stays strict)."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring
from markupsafe import escape

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
DC = "{http://www.omg.org/spec/DD/20100524/DC}"
DI = "{http://www.omg.org/spec/DD/20100524/DI}"


def _kinds(root: Element) -> dict[str, tuple[str, str]]:
    """element id -> (local tag name, name attribute)."""
    out = {}
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith(BPMN) and el.get("id"):
            out[el.get("id")] = (el.tag[len(BPMN):], el.get("name") or "")
    return out


def _marks(instance: Any) -> dict[str, str]:
    marks: dict[str, str] = {}
    for t in getattr(instance, "tasks", []):
        if t.state == "completed":
            marks.setdefault(t.spec_id, "done")
        elif t.state in ("open", "claimed"):
            marks[t.spec_id] = "active"
    for incident in getattr(instance, "incidents", []):
        if incident.resolved_at is None and incident.task_name:
            marks[incident.task_name] = "incident"
    return marks


def render_svg(xml: str, key: str, instance: Any = None) -> str | None:
    try:
        root = fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except Exception:
        return None
    kinds = _kinds(root)
    marks = _marks(instance) if instance is not None else {}
    shapes, edges = [], []
    xs, ys = [0.0], [0.0]
    for shape in root.iter(f"{BPMNDI}BPMNShape"):
        bounds = shape.find(f"{DC}Bounds")
        ref = shape.get("bpmnElement") or ""
        if bounds is None:
            continue
        x, y, w, h = (float(bounds.get(k, "0")) for k in ("x", "y", "width", "height"))
        xs.append(x + w)
        ys.append(y + h)
        kind, name = kinds.get(ref, ("", ""))
        mark = marks.get(ref) or marks.get(name) or ""
        cls = f"node {kind} {mark}".strip()
        label = escape(name)
        title = f"<title>{escape(name or ref)}{' (' + mark + ')' if mark else ''}</title>"
        if kind.endswith("Event"):
            r = min(w, h) / 2
            body = f'<circle cx="{x + w / 2:g}" cy="{y + h / 2:g}" r="{r:g}"/>'
            text = f'<text x="{x + w / 2:g}" y="{y + h + 14:g}">{label}</text>'
        elif kind.endswith("Gateway"):
            cx, cy = x + w / 2, y + h / 2
            body = f'<polygon points="{cx:g},{y:g} {x + w:g},{cy:g} {cx:g},{y + h:g} {x:g},{cy:g}"/>'
            text = f'<text x="{cx:g}" y="{y - 6:g}">{label}</text>'
        elif kind in ("participant", "lane"):
            cls = f"pool {kind}"
            body = f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}"/>'
            text = f'<text x="{x + 6:g}" y="{y + 16:g}" class="pool-label">{label}</text>'
        else:
            body = f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="8"/>'
            text = _wrapped(name, x + w / 2, y + h / 2, w)
        shapes.append((0 if kind in ("participant", "lane") else 1,
                       f'<g class="{escape(cls)}" data-id="{escape(ref)}">{title}{body}{text}</g>'))
    for edge in root.iter(f"{BPMNDI}BPMNEdge"):
        points = []
        for wp in edge.findall(f"{DI}waypoint"):
            px, py = float(wp.get("x", "0")), float(wp.get("y", "0"))
            xs.append(px)
            ys.append(py)
            points.append(f"{px:g},{py:g}")
        if points:
            edges.append(f'<polyline class="flow" points="{" ".join(points)}" marker-end="url(#arrow)"/>')
    if len(xs) == 1:
        return None
    width, height = max(xs) + 20, max(ys) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bpmn" viewBox="0 0 {width:g} {height:g}" '
             f'role="img" aria-label="Diagram of {escape(key)}">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>']
    parts += [s for _, s in sorted(shapes, key=lambda p: p[0]) if _ == 0]
    parts += edges
    parts += [s for _, s in sorted(shapes, key=lambda p: p[0]) if _ == 1]
    parts.append("</svg>")
    return "".join(parts)


def _wrapped(name: str, cx: float, cy: float, width: float) -> str:
    per_line = max(6, int(width / 7))
    words, lines, current = name.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > per_line:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    lines = lines[:4]
    start = cy - (len(lines) - 1) * 7
    spans = "".join(f'<tspan x="{cx:g}" y="{start + i * 14:g}">{escape(line)}</tspan>' for i, line in enumerate(lines))
    return f"<text>{spans}</text>"
