"""The case a task belongs to, as the inbox shows and searches it: reference, title and a short summary.

A process declares its case with Camunda properties on the process element, each naming variables
(a comma list):

    <bpmn:process id="complaint_to_improvement" ...>
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="case.title" value="customer_name" />
        <camunda:property name="case.summary" value="product, severity, category" />
      </camunda:properties></bpmn:extensionElements>

The title joins the present values of its variables; the summary lists each present value after
its label: the variable's form-field label in the process (a task form's before the start form's,
whose labels speak to the customer), else the variable name made readable. Without the properties
a few well-known variables are used (`FALLBACK_*`). The reference is the business key.

`case_columns` is what the unit of work writes on every save of an instance (process_instance
case_title, case_summary and the search text case_text, indexed in storage: FTS5 / pg_trgm).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from storage.instances import TASK_SORTS, case_rows

__all__ = ["LISTED_VARIABLES", "TASK_SORTS", "CaseDeclaration", "case_columns", "case_of", "cases_of_instances",
           "declared_case", "search_text"]

TITLE_PROPERTY = "case.title"
SUMMARY_PROPERTY = "case.summary"
# without declared properties: variables naming who the case is about (first present wins), then
# short facts listed in the summary
FALLBACK_TITLE = ("customer_name", "supplier_name", "supplier", "reporter_name")
FALLBACK_SUMMARY = (("product", "Product"), ("severity", "Severity"), ("category", "Category"))
# what a task list reads of an instance's data (the rest of the case is in its case columns)
LISTED_VARIABLES = ("reference", "complaint_reference", *FALLBACK_TITLE, *(name for name, _ in FALLBACK_SUMMARY))
MAX_PART = 120  # characters of one value
MAX_TITLE = 255  # process_instance.case_title
MAX_SUMMARY = 500  # process_instance.case_summary


@dataclass(frozen=True)
class CaseDeclaration:
    """What a process declares: title variables and (variable, label) pairs of the summary."""

    title: tuple[str, ...] = ()
    summary: tuple[tuple[str, str], ...] = ()
    declared: bool = False
    labels: dict[str, str] = field(default_factory=dict, compare=False)


FALLBACK = CaseDeclaration()


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


def _readable(name: str) -> str:
    text = name.replace("_", " ").replace(".", " ").strip()
    return text[:1].upper() + text[1:]


def declared_case(root: Any, key: str, bpmn_ns: str, camunda_ns: str) -> CaseDeclaration:
    """The case declaration of process KEY in a parsed BPMN document (FALLBACK without properties)."""
    for process in root.iter(f"{{{bpmn_ns}}}process"):
        if process.get("id") != key:
            continue
        props = {p.get("name"): p.get("value", "") for p in process.findall(
            f"{{{bpmn_ns}}}extensionElements/{{{camunda_ns}}}properties/{{{camunda_ns}}}property")}
        title, summary = _names(props.get(TITLE_PROPERTY)), _names(props.get(SUMMARY_PROPERTY))
        if not title and not summary:
            return FALLBACK
        start_labels: dict[str, str] = {}
        task_labels: dict[str, str] = {}
        for element in process.iter():
            fields = element.findall(f"{{{bpmn_ns}}}extensionElements/{{{camunda_ns}}}formData/{{{camunda_ns}}}formField")
            into = start_labels if element.tag == f"{{{bpmn_ns}}}startEvent" else task_labels
            for f in fields:
                if f.get("id") and f.get("label"):
                    into.setdefault(f.get("id"), f.get("label").strip())
        labels = {**start_labels, **task_labels}
        return CaseDeclaration(title=title, summary=tuple((n, labels.get(n) or _readable(n)) for n in summary),
                               declared=True, labels=labels)
    return FALLBACK


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        value = "Yes" if value else "No"
    text = " ".join(str(value).split())
    return text[:MAX_PART] or None


def _value(data: dict[str, Any], name: str) -> str | None:
    value: Any = data
    for part in name.split("."):  # dotted names reach into objects, as form fields do
        value = value.get(part) if isinstance(value, dict) else None
    return _text(value)


def case_of(business_key: str | None, data: dict[str, Any] | None,
            declaration: CaseDeclaration = FALLBACK) -> dict[str, Any]:
    """`{reference, title, summary, customer, product, severity}` of an instance (missing parts None)."""
    data = data if isinstance(data, dict) else {}
    reference = _text(business_key) or _text(data.get("reference")) or _text(data.get("complaint_reference"))
    customer = next((t for t in (_text(data.get(v)) for v in FALLBACK_TITLE) if t), None)
    if declaration.declared:
        title = " — ".join(v for v in (_value(data, n) for n in declaration.title) if v)
        facts = [(label, _value(data, name)) for name, label in declaration.summary]
    else:
        title = " — ".join(p for p in (customer, _text(data.get("product"))) if p)
        facts = [(label, _text(data.get(name))) for name, label in FALLBACK_SUMMARY]
    summary = " · ".join(f"{label}: {value}" for label, value in facts if value)
    return {"reference": reference, "title": title[:MAX_TITLE] or None, "summary": summary[:MAX_SUMMARY] or None,
            "customer": customer, "product": _text(data.get("product")), "severity": _text(data.get("severity"))}


def cases_of_instances(conn: Any, instance_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The case of each instance, by id, for lists (the inbox, notifications): the title and summary
    as the process declares them (written with the instance's last save), else from a few variables."""
    cases = {}
    for instance_id, row in case_rows(conn, instance_ids, LISTED_VARIABLES).items():
        case = case_of(row["business_key"], row["variables"])
        if row["indexed"]:
            case.update(title=row["case_title"], summary=row["case_summary"])
        cases[instance_id] = case
    return cases


def search_text(case: dict[str, Any]) -> str | None:
    """What the case search matches: reference, title, summary and customer name, lower-cased."""
    parts = [case.get(k) for k in ("reference", "title", "summary", "customer")]
    text = " | ".join(p for p in parts if p).lower()
    return text or None


def case_columns(business_key: str | None, data: dict[str, Any] | None,
                 declaration: CaseDeclaration = FALLBACK) -> dict[str, Any]:
    """The process_instance case columns for an instance's current data."""
    case = case_of(business_key, data, declaration)
    return {"case_title": case["title"], "case_summary": case["summary"], "case_text": search_text(case)}
