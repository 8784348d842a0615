"""A file as Camunda Modeler 5 writes it deploys unchanged and runs: lanes, candidateGroups, an
assignee, formData without formKey, JUEL conditions, plain ISO 8601 timers on a boundary event and
an intermediate catch event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from lxml import etree

from engine.views import Actor
from tests.conftest import FIXTURES
from tests.fixtures.runtime.helpers import add_users

FILE = FIXTURES / "camunda_modeler_complaint.bpmn"
KEY = "camunda_complaint"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SUPPORT = Actor("sam.support", frozenset({"support"}), "employee")


def open_tasks(runtime, instance_id, actor):
    return {t.spec_id: t for t in runtime.tasks(actor, instance_id=instance_id) if t.state in ("open", "claimed")}


def test_fixture_looks_like_camunda_modeler_output():
    root = etree.parse(str(FILE)).getroot()
    assert root.get("exporter") == "Camunda Modeler" and root.get("exporterVersion", "").startswith("5.")
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
          "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
    drawn = {el.get("bpmnElement") for el in root.xpath("//bpmndi:BPMNShape|//bpmndi:BPMNEdge", namespaces=ns)}
    elements = {el.get("id") for el in root.xpath(
        "//bpmn:process/*[not(self::bpmn:laneSet)]|//bpmn:lane|//bpmn:participant|"
        "//bpmn:collaboration/*", namespaces=ns)}
    assert elements - drawn == set()
    timers = [t.text for t in root.xpath("//bpmn:timeDuration", namespaces=ns)]
    assert timers == ["PT1H", "P1D"]


def test_deploys_unchanged(runtime):
    content = FILE.read_bytes()
    report = runtime.deploy([(FILE.name, content)])
    assert report.ok, "\n".join(map(str, report.problems))
    assert [str(r) for r in report.results] == [f"{KEY} v1"]
    assert runtime.definition_xml(KEY) == content.decode()
    assert [str(r) for r in runtime.deploy_paths([FILE])] == [f"{KEY} v1 unchanged"]


def _start(runtime, lead, severity, amount):
    add_users(runtime, "lena.lead")  # the escalation task's assignee
    runtime.deploy_paths([FILE])
    instance = runtime.start(KEY, {"reference": "C-7"}, lead)
    register = open_tasks(runtime, instance.id, SUPPORT)["Task_Register"]
    assert sorted(register.groups) == ["frontdesk", "support"]
    assert [f["id"] for f in runtime.task(register.id, SUPPORT).form] == ["severity", "amount"]
    return runtime.complete(register.id, SUPPORT, {"severity": severity, "amount": amount})


def _reply_wait_and_close(runtime, traveller, instance_id):
    reply = open_tasks(runtime, instance_id, SUPPORT)["Task_Reply"]
    assert reply.groups == ["support"]  # lane name becomes the group
    runtime.complete(reply.id, SUPPORT, {})
    assert open_tasks(runtime, instance_id, SUPPORT) == {}
    assert runtime.fire_due_timers().fired == 0  # a day has not passed yet
    traveller.shift(timedelta(hours=23))
    runtime.fire_due_timers()
    assert open_tasks(runtime, instance_id, SUPPORT) == {}
    traveller.shift(timedelta(hours=2))
    assert runtime.fire_due_timers().fired == 1
    close = open_tasks(runtime, instance_id, SUPPORT)["Task_Close"]
    done = runtime.complete(close.id, SUPPORT, {})
    assert done.status == "completed"
    return done


def test_minor_complaint_takes_the_default_flow(runtime, lead):
    with time_machine.travel(T0, tick=False) as traveller:
        instance = _start(runtime, lead, "low", 50)
        assert set(open_tasks(runtime, instance.id, SUPPORT)) == {"Task_Reply"}
        done = _reply_wait_and_close(runtime, traveller, instance.id)
    assert done.data["severity"] == "low" and done.data["amount"] == 50


@pytest.mark.parametrize(("severity", "amount"), [("high", 10), ("low", 5000)])
def test_serious_complaint_investigated_in_time(runtime, lead, severity, amount):
    with time_machine.travel(T0, tick=False) as traveller:
        instance = _start(runtime, lead, severity, amount)
        investigate = open_tasks(runtime, instance.id, lead)["Task_Investigate"]
        assert investigate.groups == ["quality_lead"]
        traveller.shift(timedelta(minutes=30))
        assert runtime.fire_due_timers().fired == 0
        runtime.complete(investigate.id, lead, {"root_cause": "seal"})
        traveller.shift(timedelta(hours=2))  # the boundary timer is gone with its task
        runtime.fire_due_timers()
        assert "Task_Escalate" not in open_tasks(runtime, instance.id, lead)
        done = _reply_wait_and_close(runtime, traveller, instance.id)
    assert done.data["root_cause"] == "seal"


def test_overdue_investigation_escalates_through_the_boundary_timer(runtime, lead):
    with time_machine.travel(T0, tick=False) as traveller:
        instance = _start(runtime, lead, "high", 10)
        assert set(open_tasks(runtime, instance.id, lead)) == {"Task_Investigate"}
        traveller.shift(timedelta(minutes=61))
        assert runtime.fire_due_timers().fired == 1
        tasks = open_tasks(runtime, instance.id, lead)
        assert set(tasks) == {"Task_Escalate"}
        assert tasks["Task_Escalate"].assignee == "lena.lead"
        runtime.complete(tasks["Task_Escalate"].id, lead, {})
        done = _reply_wait_and_close(runtime, traveller, instance.id)
    states = {t.spec_id: t.state for t in done.tasks}
    assert states["Task_Escalate"] == "completed" and states["Task_Investigate"] != "completed"
