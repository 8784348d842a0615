"""Form validation on complete: every bad field is named, the task stays open, nothing is lost."""

from __future__ import annotations

import pytest

from engine.errors import FormValidationError
from engine.forms import set_path, validate_submission
from tests.fixtures.runtime.helpers import REVIEWER, deploy, only_open


@pytest.fixture
def form_task(runtime):
    deploy(runtime, "form")
    instance = runtime.start("rt_form", {"action": {"what": "replace seal"}}, REVIEWER)
    return runtime, instance, only_open(instance)


def _errors(exc_info) -> dict[str, str]:
    return {d["field"]: d["message"] for d in exc_info.value.details}


def test_form_model_is_exposed_on_the_task(form_task):
    _, _, task = form_task
    fields = {f["id"]: f for f in task.form}
    assert list(fields) == ["count", "urgent", "when", "kind", "title", "action.done_at"]
    assert fields["count"]["type"] == "long" and fields["count"]["required"] is True
    assert fields["count"]["validation"] == {"min": "1", "max": "10"}
    assert fields["kind"]["options"] == [{"id": "repair", "name": "Repair"}, {"id": "replace", "name": "Replace"}]
    assert fields["urgent"]["required"] is False


def test_every_bad_field_is_named_and_task_stays_open(form_task):
    runtime, instance, task = form_task
    bad = {"count": "eleven", "urgent": "maybe", "when": "31/12/2026", "kind": "burn",
           "title": "ab", "action.done_at": "soon", "colour": "red"}
    with pytest.raises(FormValidationError) as exc_info:
        runtime.complete(task.id, REVIEWER, bad)
    errors = _errors(exc_info)
    assert set(errors) == {"count", "urgent", "when", "kind", "title", "action.done_at", "colour"}
    assert errors["colour"] == "is not a field of this form"
    assert exc_info.value.http_status == 422
    view = runtime.task(task.id, REVIEWER)
    assert view.state == "open" and view.completed_at is None
    after = runtime.instance(instance.id)
    assert after.status == "running" and after.data["action"] == {"what": "replace seal"}
    assert [a.type for a in after.audit].count("complete") == 0
    # the same task can then be completed with good values
    done = runtime.complete(task.id, REVIEWER, {"count": "3", "title": "seal"})
    assert done.data["count"] == 3


@pytest.mark.parametrize(("values", "bad"), [
    ({}, {"count"}),                                      # required missing
    ({"count": ""}, {"count"}),                           # empty HTML input = missing
    ({"count": None}, {"count"}),
    ({"count": "0"}, {"count"}),                          # below min
    ({"count": 11}, {"count"}),                           # above max
    ({"count": 2.5}, {"count"}),                          # not whole
    ({"count": True}, {"count"}),                         # a bool is not a number
    ({"count": 1, "title": "x" * 11}, {"title"}),         # maxlength
    ({"count": 1, "title": "ab"}, {"title"}),             # minlength
    ({"count": 1, "kind": "Repair"}, {"kind"}),           # enum uses ids
    ({"count": 1, "when": "2026-02-30"}, {"when"}),       # not a date
    ({"count": 1, "urgent": "perhaps"}, {"urgent"}),
    ({"count": 1, "urgent": []}, {"urgent"}),
    ({"count": 1, "title": {"a": 1}}, {"title"}),
])
def test_single_rules(form_task, values, bad):
    runtime, _, task = form_task
    with pytest.raises(FormValidationError) as exc_info:
        runtime.complete(task.id, REVIEWER, values)
    assert set(_errors(exc_info)) == bad
    assert runtime.task(task.id, REVIEWER).state == "open"


def test_good_values_are_converted_and_dotted_ids_nest(form_task):
    runtime, _, task = form_task
    instance = runtime.complete(task.id, REVIEWER, {
        "count": "10", "urgent": "on", "when": "2026-03-31", "kind": "repair", "title": "new seal",
        "action.done_at": "2026-04-02T10:00:00Z"})
    data = instance.data
    assert data["count"] == 10 and data["urgent"] is True and data["when"] == "2026-03-31"
    assert data["kind"] == "repair" and data["title"] == "new seal"
    # nested write keeps the rest of the dict
    assert data["action"] == {"what": "replace seal", "done_at": "2026-04-02T10:00:00+00:00"}
    done = next(t for t in instance.tasks if t.id == task.id)
    assert done.values["count"] == 10 and done.values["urgent"] is True


def test_unticked_checkbox_is_false(form_task):
    runtime, _, task = form_task
    instance = runtime.complete(task.id, REVIEWER, {"count": 1})
    assert instance.data["urgent"] is False


@pytest.mark.parametrize(("raw", "expected"), [
    ("on", True), ("true", True), ("1", True), (True, True),
    ("off", False), ("false", False), ("0", False), (False, False),
])
def test_boolean_spellings(raw, expected):
    spec = [{"id": "b", "type": "boolean", "required": False, "readonly": False, "validation": {}, "options": []}]
    values, errors = validate_submission(spec, {"b": raw})
    assert errors == [] and values == {"b": expected}


def test_submission_must_be_an_object():
    values, errors = validate_submission([], ["not", "a", "dict"])  # type: ignore[arg-type]
    assert values == {} and errors[0]["field"] is None


def test_readonly_fields_are_ignored():
    spec = [{"id": "ref", "type": "string", "required": False, "readonly": True, "validation": {}, "options": []}]
    values, errors = validate_submission(spec, {"ref": "changed"})
    assert errors == [] and values == {}


def test_set_path_replaces_non_dict_parent():
    data = {"a": 1, "b": {"c": 1}}
    set_path(data, "a.x", 2)
    set_path(data, "b.d.e", 3)
    assert data == {"a": {"x": 2}, "b": {"c": 1, "d": {"e": 3}}}


def test_email_property_and_length_messages():
    spec = [{"id": "mail", "type": "string", "required": False, "readonly": False, "options": [],
             "validation": {"minlength": "6", "maxlength": "20"}, "properties": {"format": "email"}}]
    assert validate_submission(spec, {"mail": "  ann@example.com "}) == ({"mail": "ann@example.com"}, [])
    assert validate_submission(spec, {"mail": "   "}) == ({"mail": ""}, [])  # optional and empty: no rule applies
    assert validate_submission(spec, {"mail": "ann(at)example"})[1] == [
        {"field": "mail", "message": "is not a valid e-mail address"}]
    assert validate_submission(spec, {"mail": "a@b"})[1] == [
        {"field": "mail", "message": "must be at least 6 characters; is not a valid e-mail address"}]
    assert validate_submission(spec, {"mail": "ann.example@example.com"})[1] == [
        {"field": "mail", "message": "must be at most 20 characters"}]
