"""What an instance's diagram shows: each BPMN element's state (completed, active, waiting with
its due time or topic, incident) and the sequence flows a token took. The states come from the
workflow (spiff.element_states); the flows are looked up in the definition's XML by their
source and target, since SpiffWorkflow keeps no sequence-flow ids."""

from __future__ import annotations

from typing import Any

from engine.camunda_compat import parse_stored_model
from engine.definition_checks import BPMN_NS
from engine.runtime import spiff

STATES = ("completed", "active", "waiting", "incident")


def flows_by_ends(xml: str) -> dict[tuple[str, str], list[str]]:
    """(sourceRef, targetRef) -> the ids of the sequence flows between them."""
    out: dict[tuple[str, str], list[str]] = {}
    for flow in parse_stored_model(xml).iter(f"{{{BPMN_NS}}}sequenceFlow"):
        ends = (flow.get("sourceRef") or "", flow.get("targetRef") or "")
        if flow.get("id"):
            out.setdefault(ends, []).append(flow.get("id"))
    return out


def instance_diagram(xml: str, workflow: Any) -> dict[str, Any]:
    """{"elements": {id: {state, count, task_ids, due?, waiting_for?, topic?, message?}},
    "flows": [ids of the sequence flows taken], "waiting": [events waited for, called processes included]}."""
    elements, moves = spiff.element_states(workflow)
    flows = flows_by_ends(xml)
    taken = sorted({flow_id for move in moves for flow_id in flows.get(move, [])})
    return {"elements": elements, "flows": taken, "waiting": spiff.events_ahead(workflow)}


def add_counts(counts: dict[str, dict[str, int]], workflow: Any) -> None:
    """Add one instance's tokens to the per-element counts of a process page (Cockpit's badges):
    `running` where it is active or waiting, `incidents` where it failed."""
    elements, _ = spiff.element_states(workflow)
    for element_id, info in elements.items():
        if info["state"] == "completed":
            continue
        entry = counts.setdefault(element_id, {"running": 0, "incidents": 0})
        entry["incidents" if info["state"] == "incident" else "running"] += 1


def locate_problems(xml: bytes, problems: list[Any]) -> list[dict[str, Any]]:
    """Each deploy problem as {line, element, element_id, message, severity}: `element_id` is the BPMN
    element the modeler marks (named by the problem, else the BPMN element around its line; None
    when neither is known, e.g. the XML does not parse)."""
    ids: dict[str, Any] = {}
    by_line: dict[int, str] = {}
    try:
        root = parse_stored_model(xml.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - unparsable XML: its problems say so, with no element to mark
        root = None
    if root is not None:
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            owner = el
            while owner is not None and not (owner.get("id") and owner.tag.startswith(f"{{{BPMN_NS}}}")):
                owner = owner.getparent()
            if owner is None:
                continue
            if el is owner:
                ids[owner.get("id")] = owner
            by_line.setdefault(el.sourceline, owner.get("id"))
    out = []
    for p in problems:
        words = p.element.split()
        element_id = next((w for w in words[1:2] + words[:1] if w in ids), None)
        if element_id is None and p.line is not None:
            element_id = by_line.get(p.line)
        out.append({"line": p.line, "element": p.element, "element_id": element_id, "message": p.message,
                    "severity": p.severity})
    return out


_REFS = {"incoming", "outgoing"}  # follow from the flows themselves: not a change of the node


def _canonical(el: Any, top: bool = False) -> str:
    """An element as text independent of namespace prefixes, attribute order and whitespace; the
    top element leaves out children with ids of their own and incoming/outgoing references."""
    parts = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if top and (child.get("id") or child.tag.rsplit("}", 1)[-1] in _REFS):
            continue
        parts.append(_canonical(child))
    attrs = ",".join(f"{k}={v}" for k, v in sorted(el.attrib.items()))
    return f"<{el.tag} {attrs}>{(el.text or '').strip()}{''.join(parts)}</>"


def _signatures(xml: str | bytes) -> dict[str, str]:
    """BPMN element id -> its own content, for comparing two versions."""
    root = parse_stored_model(xml.decode("utf-8", "replace") if isinstance(xml, bytes) else xml)
    return {el.get("id"): _canonical(el, top=True) for el in root.iter(f"{{{BPMN_NS}}}*")
            if el.get("id") and el.tag != f"{{{BPMN_NS}}}definitions"}


def compare_models(deployed: str | bytes, draft: str | bytes) -> dict[str, list[str]]:
    """What a draft changes against a deployed version: element ids added, removed and changed."""
    try:
        old, new = _signatures(deployed), _signatures(draft)
    except Exception:  # noqa: BLE001 - a draft that does not parse has nothing to compare (Validate says why)
        return {"added": [], "removed": [], "changed": []}
    return {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new)),
            "changed": sorted(k for k in set(old) & set(new) if old[k] != new[k])}
