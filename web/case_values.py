"""Case variables as people read them: labelled, formatted, bookkeeping hidden.

One helper for the task page's case panel and the instance page (the raw JSON stays a lead's
tool). Labels come from the process's form fields (start form and the instance's task forms);
variables no form names get a few known labels or their name in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

# variables the processes keep for themselves (loop counters, waits, histories)
HIDDEN = frozenset({"rca_history", "rca_loops", "rca_round", "effectiveness_wait", "survey_token", "kind",
                    "complaint_instance_id", "parent_instance_id"})
_SLOT = re.compile(r"^action_\d+_(what|owner|due)$")  # plan slots, shown as the "actions" list instead
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
KNOWN_LABELS = {
    "reference": "Reference", "customer_name": "Customer", "customer_email": "Customer e-mail",
    "description": "Complaint", "received_at": "Received", "acknowledged_at": "Acknowledged",
    "actions": "Corrective actions", "actions_planned_at": "Actions planned",
    "actions_completed_at": "Actions completed", "effectiveness_due_at": "Effectiveness check due",
    "effectiveness_checked_at": "Effectiveness checked", "closed_at": "Closed", "closure_reason": "Closure reason",
    "replied_at": "Replied", "responded_at": "Responded", "severity": "Severity", "status": "Status",
    "effective": "Fix effective", "containment_done_at": "Containment done",
    "supplier_notified_at": "Supplier notified", "rca_started_at": "Root cause analysis started",
    "rca_reopened_at": "Analysis reopened", "stage": "Stage, as told to the customer",
}
# technical actors as people read them (engine/intake.py files public complaints as "public"; the
# scheduler and the engine act as "system")
ACTOR_NAMES = {"public": "the customer", "system": "the system"}


def actor_name(username: str | None) -> str | None:
    """Who did something, as the case timeline, the audit lists and the ISO report name them; None
    when nobody is recorded (the engine itself)."""
    return ACTOR_NAMES.get(username, username) if username else None


# the order of an action's parts when a list of actions is shown
_ACTION_PARTS = (("what", None), ("owner", "owner"), ("due", "due"), ("done_at", "done"), ("result", "result"))


def words(name: str) -> str:
    """`customer_email` → "Customer email"."""
    text = name.replace("_", " ").replace(".", " ").strip()
    return text[:1].upper() + text[1:]


def format_value(value: Any) -> str | list[str] | None:
    """Text of one variable (a list of lines for lists of records); None when there is nothing to show."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, str):
        if _STAMP.match(value):
            try:
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
            return stamp.strftime("%Y-%m-%d %H:%M") + (" UTC" if stamp.utcoffset() is not None else "")
        return value
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return _record(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, Mapping) for v in value):
            return [_record(v) for v in value]
        return ", ".join(t for t in (format_value(v) for v in value) if isinstance(t, str))
    return str(value)


def _record(item: Mapping[str, Any]) -> str:
    """One record (e.g. a corrective action) on one line: what first, then the labelled parts."""
    known = {k for k, _ in _ACTION_PARTS}
    parts = []
    for key, label in _ACTION_PARTS:
        text = format_value(item.get(key))
        if isinstance(text, str):
            parts.append(f"{label} {text}" if label else text)
    for key, value in item.items():
        text = format_value(value)
        if key not in known and key not in ("id", "round") and isinstance(text, str):
            parts.append(f"{words(key).lower()} {text}")
    return " · ".join(parts)


def form_labels(forms: Iterable[Iterable[Mapping[str, Any]]]) -> dict[str, str]:
    """Field id → label over the given forms (first label wins)."""
    labels: dict[str, str] = {}
    for form in forms:
        for f in form or []:
            if f.get("id") and f.get("label"):
                labels.setdefault(f["id"], str(f["label"]))
    return labels


def option_names(forms: Iterable[Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, str]]:
    """Choice field id → {value: the name its form shows} over the given forms (first form wins), so a
    person reads "Product quality (defect, damage, wrong part)" where the data holds `product_quality`."""
    names: dict[str, dict[str, str]] = {}
    for form in forms:
        for f in form or []:
            if f.get("id") and f.get("options") and f["id"] not in names:
                names[f["id"]] = {str(o.get("id")): str(o.get("name") or o.get("id")) for o in f["options"]}
    return names


def named(key: str, value: Any, options: Mapping[str, Mapping[str, str]] | None) -> Any:
    """`value` as its form's choice names it (the value itself when it is no choice of that field)."""
    return (options or {}).get(key, {}).get(value, value) if isinstance(value, str) else value


def case_values(data: Mapping[str, Any], labels: Mapping[str, str],
                options: Mapping[str, Mapping[str, str]] | None = None) -> list[dict[str, Any]]:
    """`[{id, label, value}]` of the variables worth showing, in label order; `value` is a str or a list
    of str (records); a choice shows its name (`options`, see option_names). Internal variables, nested
    objects and empty values are left out."""
    rows = []
    has_actions = isinstance(data.get("actions"), list)
    for key, value in data.items():
        if key.startswith("_") or key in HIDDEN or (has_actions and _SLOT.match(key)):
            continue
        if isinstance(value, Mapping):
            continue
        text = format_value(named(key, value, options))
        if text is None:
            continue
        rows.append({"id": key, "label": labels.get(key) or KNOWN_LABELS.get(key) or words(key), "value": text})
    first = {"reference": 0, "status": 1, "stage": 2, "customer_name": 3, "product": 4, "severity": 5}
    return sorted(rows, key=lambda r: (first.get(r["id"], 9), r["label"].lower()))


def short_label(label: str) -> str:
    """A form label without its trailing input hint: "Root cause (one or two sentences)" → "Root cause"."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", label).strip() or label


def actual_actions(actions: list[Any], tasks: Iterable[Any]) -> list[Any]:
    """The action records with the owner and due date their tasks have now (after a lead reassigned
    one or moved its due date), by the ISO report's rule (engine/kpi_rules.with_actual_work); the
    records in the case data keep the plan."""
    from engine.kpi_rules import with_actual_work

    facts = [{"action_id": str(a["id"])[:40], "owner": a.get("owner"), "due_on": a.get("due"), "done_on": a.get("done_at")}
             for a in actions if isinstance(a, Mapping) and a.get("id")]
    actual = {f["action_id"]: f for f in with_actual_work(facts, list(tasks))}
    out = []
    for a in actions:
        fact = actual.get(str(a.get("id"))[:40]) if isinstance(a, Mapping) and a.get("id") else None
        out.append(a if fact is None else {**a, "owner": fact["owner"] or a.get("owner"), "due": fact["due_on"]})
    return out


def instance_case_values(runtime: Any, instance: Any) -> list[dict[str, Any]]:
    """The case panel of an instance: its variables labelled by its start form and task forms."""
    from engine.errors import NotFoundError
    from engine.intake import start_form

    try:
        start = start_form(runtime, instance.key, instance.version)
    except NotFoundError:
        start = []
    # staff read this panel: the tasks' labels first, then ours, then the (customer-worded) start form's
    labels = form_labels([start]) | KNOWN_LABELS | form_labels(t.form for t in instance.tasks)
    data = dict(instance.data or {})
    if isinstance(data.get("actions"), list):
        data["actions"] = actual_actions(data["actions"], instance.tasks)
    options = option_names([start, *(t.form for t in instance.tasks)])
    if "status" in data:  # the process's own word stays at the step that set it ("acknowledged")
        data.update(case_progress(runtime, instance, data))
    return case_values(data, {k: short_label(v) for k, v in labels.items()}, options)


STATUS_NAMES = {"received": "Received", "in_progress": "In progress", "closed": "Closed"}


def status_name(instance_status: str, data_status: Any) -> str:
    """A case's status in words, as its customer's status page gives it (the case panel, the ISO
    report): Received, In progress, Closed; rejected and cancelled cases say so."""
    from engine.complaint_status import status_of

    if instance_status == "cancelled":
        return "Cancelled"
    if data_status == "rejected":
        return "Closed: not valid"
    if data_status in (None, "") and instance_status != "completed":  # a process that keeps no status
        return STATUS_NAMES["in_progress"]
    return STATUS_NAMES[status_of(instance_status, data_status)]


def case_progress(runtime: Any, instance: Any, data: Mapping[str, Any]) -> dict[str, str]:
    """The case panel's status and stage: the status as the customer's status page gives it (rejected
    and cancelled cases said so), and the stage the model words for the customer at the element(s)
    the case is at now (`customer.stage`, engine/complaint_status.py) when it words one."""
    from engine.complaint_status import progress

    now = progress(runtime, instance.id, instance.status, dict(data))
    shown = {"status": status_name(instance.status, data.get("status"))}
    if now["declared"] or (now["status"] == "closed" and instance.status != "cancelled"):
        shown["stage"] = now["stage"]
    return shown
