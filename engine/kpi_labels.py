"""What people read for the coded values of the KPI facts: a category is stored as its enum option id
(``product_quality``) and shown as the option's name in the deployed process's form ("Product quality
(defect, damage, wrong part)"). Read from the latest version of each tracked process (engine/kpi_rules.py
``KINDS``); an id no form names is shown as it is."""

from __future__ import annotations

from typing import Any

from engine.forms import form_fields
from engine.kpi_rules import KINDS


def _forms(spec: Any) -> list[Any]:
    return [form for task_spec in spec.task_specs.values() if (form := getattr(task_spec, "form", None))]


def option_labels(runtime: Any, field_id: str) -> dict[str, str]:
    """{option id: option name} of the enum form fields called `field_id` in the tracked processes' task
    forms (the first process in ``KINDS`` order wins when two name an option differently)."""
    labels: dict[str, str] = {}
    with runtime.db.read() as session:
        for key in KINDS:
            definition = runtime.definitions.latest(session, key)
            if definition is None:
                continue
            top, subprocesses = runtime.definitions.specs(session, definition.id)
            for spec in (top, *subprocesses.values()):
                for form in _forms(spec):
                    for field in form_fields(form):
                        if field["id"] == field_id and field["type"] == "enum":
                            for option in field["options"]:
                                labels.setdefault(option["id"], option["name"])
    return labels


def dashboard_labels(runtime: Any) -> dict[str, dict[str, str]]:
    """{"category": option names, "process": display names} for the dashboard and the ISO report."""
    from engine.inbox import process_choices

    return {"category": option_labels(runtime, "category"), "process": dict(process_choices(runtime.db))}
