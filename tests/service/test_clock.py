"""The engine clock: `shifted`/`advance` move `clock.now()` and SpiffWorkflow's timer events alike,
so timers come due without moving the system time (what `pdcaflow bench timers` relies on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer

from engine import clock
from engine.runtime import spiff  # noqa: F401  (points SpiffWorkflow at the engine clock)
from engine.runtime.timers import fire_due_timers
from tests.conftest import FIXTURES


@pytest.fixture(autouse=True)
def _system_clock():
    clock.reset()
    yield
    clock.reset()


def test_shifted_moves_now_and_restores_the_previous_offset():
    with clock.shifted(timedelta(hours=2)):
        assert clock.now() - datetime.now(UTC) > timedelta(hours=2) - timedelta(seconds=5)
        with clock.shifted(timedelta(days=-1)):
            assert clock.offset() == timedelta(hours=-22)
        assert clock.offset() == timedelta(hours=2)
    assert clock.offset() == timedelta(0)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_advance_until_reset():
    clock.advance(timedelta(minutes=30))
    clock.advance(timedelta(minutes=30))
    assert clock.offset() == timedelta(hours=1)
    clock.reset()
    assert clock.offset() == timedelta(0)


def test_spiffworkflow_timers_read_the_engine_clock():
    with clock.shifted(timedelta(days=3)):
        seen = spiff_timer.datetime.now(timezone.utc)
        assert abs(seen - clock.now()) < timedelta(seconds=5)
    # everything else is the real datetime: parsing, and isinstance checks on parsed values
    parsed = spiff_timer.TimerEventDefinition.get_datetime("2026-03-02T09:00:00Z")
    assert type(parsed) is datetime and isinstance(parsed, spiff_timer.datetime)


def test_a_one_hour_timer_fires_once_the_engine_clock_is_past_it(runtime, lead):
    runtime.deploy_paths([FIXTURES / "scheduler" / "timer_wait.bpmn"])
    instance_id = runtime.start("timer_wait", {"reference": "C-1"}, lead).id
    assert fire_due_timers(runtime, "w1").fired == 0
    with clock.shifted(timedelta(minutes=61)):
        assert fire_due_timers(runtime, "w1").fired == 1
    assert runtime.instance(instance_id).status == "completed"
