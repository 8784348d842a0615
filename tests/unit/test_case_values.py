"""web/case_values.py: variables shown labelled and formatted, bookkeeping hidden."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

from web.case_values import actual_actions, case_values, format_value, option_names, short_label


def test_values_are_formatted_for_people():
    assert format_value(True) == "Yes" and format_value(False) == "No"
    assert format_value("2026-12-07T10:15:30.123456+00:00") == "2026-12-07 10:15 UTC"
    assert format_value("2026-12-07") == "2026-12-07"
    assert format_value(["a", "b"]) == "a, b"
    assert format_value(None) is None and format_value("") is None and format_value([]) is None
    assert format_value([{"id": "1-1", "what": "Replace the mould", "owner": "rob", "due": "2026-12-14",
                         "done_at": None}]) == ["Replace the mould · owner rob · due 2026-12-14"]


def test_case_values_label_and_hide_bookkeeping():
    data = {"customer_name": "Ann", "reference": "C-1", "rca_history": [{"round": 1}], "effectiveness_wait": "P30D",
            "_internal": 1, "containment_done": True, "actions": [{"what": "Fix", "owner": "rob"}],
            "action_1_owner": "rob", "nested": {"a": 1}, "empty": "", "received_at": "2026-12-01T08:00:00+00:00"}
    rows = case_values(data, {"customer_name": "Customer name", "containment_done": "Containment done"})
    shown = {r["id"]: (r["label"], r["value"]) for r in rows}
    assert list(shown)[:2] == ["reference", "customer_name"]
    assert shown["containment_done"] == ("Containment done", "Yes")
    assert shown["actions"] == ("Corrective actions", ["Fix · owner rob"])
    assert shown["received_at"] == ("Received", "2026-12-01 08:00 UTC")
    for hidden in ("rca_history", "effectiveness_wait", "_internal", "action_1_owner", "nested", "empty"):
        assert hidden not in shown


def test_short_label_drops_the_input_hint():
    assert short_label("Root cause (one or two sentences)") == "Root cause"
    assert short_label("Amount") == "Amount"


def test_actions_show_the_owner_and_due_date_of_their_task_after_a_reassignment():
    planned = [{"id": "1-1", "what": "Fix", "owner": "ann", "due": "2026-12-17", "done_at": None},
               {"id": "1-2", "what": "Train", "owner": "ann", "due": "2026-12-20", "done_at": None}]
    moved = SimpleNamespace(context={"action": {"id": "1-1"}}, state="claimed", assignee="piet", completed_by=None,
                            due_at=datetime(2026, 12, 28, 23, 59, tzinfo=UTC), completed_at=None,
                            created_at=datetime(2026, 12, 7, tzinfo=UTC))
    shown = actual_actions(planned, [moved])
    assert (shown[0]["owner"], shown[0]["due"]) == ("piet", date(2026, 12, 28))
    assert shown[1] == planned[1] and planned[0]["owner"] == "ann"  # no task yet: the plan; the data is untouched
    assert format_value(shown)[0] == "Fix · owner piet · due 2026-12-28"


def test_a_choice_shows_the_name_its_form_gives_it():
    form = [{"id": "category", "label": "Category", "type": "enum",
             "options": [{"id": "product_quality", "name": "Product quality (defect, damage, wrong part)"}]}]
    rows = case_values({"category": "product_quality", "channel": "web"}, {}, option_names([form]))
    shown = {r["id"]: r["value"] for r in rows}
    assert shown == {"category": "Product quality (defect, damage, wrong part)", "channel": "web"}
