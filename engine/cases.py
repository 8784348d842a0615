"""The case a task belongs to, as the inbox shows it: reference, title and a short summary.

Computed from the instance's business key and a few well-known variables, so two tasks of the same
step in different complaints read differently. Pure functions: the runtime reads the rows
(storage/instances.case_rows) and calls `case_of` per instance.
"""

from __future__ import annotations

from typing import Any

from storage.instances import TASK_SORTS

__all__ = ["TASK_SORTS", "case_of"]

# variables naming who the case is about, first present wins (customer complaints, supplier cases)
TITLE_VARIABLES = ("customer_name", "supplier_name", "supplier", "reporter_name")
# short facts listed after the title, with the label the inbox shows
SUMMARY_VARIABLES = (("product", "Product"), ("severity", "Severity"), ("category", "Category"))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text[:120] or None


def case_of(business_key: str | None, data: dict[str, Any] | None) -> dict[str, Any]:
    """`{reference, title, summary, customer, product, severity}` of an instance (missing parts None)."""
    data = data if isinstance(data, dict) else {}
    reference = _text(business_key) or _text(data.get("reference")) or _text(data.get("complaint_reference"))
    customer = next((t for t in (_text(data.get(v)) for v in TITLE_VARIABLES) if t), None)
    facts = {name: _text(data.get(name)) for name, _ in SUMMARY_VARIABLES}
    title_parts = [p for p in (customer, facts["product"]) if p]
    summary = " · ".join(f"{label}: {facts[name]}" for name, label in SUMMARY_VARIABLES if facts[name])
    return {"reference": reference, "title": " — ".join(title_parts) or None, "summary": summary or None,
            "customer": customer, "product": facts["product"], "severity": facts["severity"]}
