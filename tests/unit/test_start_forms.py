"""Start forms: the formData of a process's start event is what `Runtime.start` checks; its fields
are validated and coerced, every bad one is named, other variables pass through."""

from __future__ import annotations

import pytest

from engine.errors import FormValidationError, NotFoundError
from engine.intake import start_form
from engine.views import Actor
from tests.conftest import FIXTURES, PROCESSES

INTAKE = Actor("public-intake", frozenset({"employee"}), "employee")


@pytest.fixture
def rt(runtime):
    runtime.deploy_paths([PROCESSES, FIXTURES / "simple_review.bpmn"])
    return runtime


def test_start_form_of_a_process(rt):
    fields = {f["id"]: f for f in start_form(rt, "complaint_to_improvement")}
    assert list(fields) == ["customer_name", "customer_email", "product", "order_ref", "description",
                            "desired_outcome"]
    assert fields["customer_email"]["required"] and fields["customer_email"]["validation"] == {"maxlength": "254"}
    assert fields["customer_email"]["properties"] == {"format": "email", "staff_label": "Customer's e-mail address"}
    assert fields["description"]["validation"] == {"minlength": "10", "maxlength": "5000"}
    assert not fields["order_ref"]["required"]
    assert start_form(rt, "simple_review") == []  # no form on its start event
    assert [f["id"] for f in start_form(rt, "complaint_to_improvement", version=1)] == list(fields)
    with pytest.raises(NotFoundError):
        start_form(rt, "no_such_process")


def test_start_coerces_form_fields_and_keeps_other_variables(rt):
    instance = rt.start("customer_feedback", {"feedback_type": "praise", "customer_name": "  Tom ",
                                              "message": "Great", "csat": "4", "source": "survey import"}, INTAKE)
    assert instance.status == "running"
    assert instance.data["csat"] == 4 and instance.data["customer_name"] == "Tom"
    assert instance.data["source"] == "survey import"  # not a form field: passed on as it was


def test_start_names_every_bad_field_and_starts_nothing(rt):
    with pytest.raises(FormValidationError) as exc_info:
        rt.start("customer_feedback", {"feedback_type": "angry", "message": " ", "csat": 9, "nps": "ten",
                                       "source": "survey import"}, INTAKE)
    errors = {d["field"]: d["message"] for d in exc_info.value.details}
    assert set(errors) == {"feedback_type", "customer_name", "message", "csat", "nps"}
    assert errors["customer_name"] == errors["message"] == "is required"
    assert errors["nps"] == "must be a whole number"
    assert exc_info.value.http_status == 422
    assert rt.instances() == []


def test_start_checks_the_version_it_starts(rt):
    # a process without a start form takes any data; version 1 of the complaint process checks it
    assert rt.start("simple_review", {"anything": 1}, INTAKE).status == "running"
    with pytest.raises(FormValidationError):
        rt.start("complaint_to_improvement", {"reference": "C-1"}, INTAKE, version=1)
