"""Camunda's Quartz cron timeCycle, translated for APScheduler's CronTrigger (engine/cron.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import cron

MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)  # a Monday, 08:00 UTC


def nexts(text: str, after: datetime, n: int = 3) -> list[datetime]:
    out = []
    for _ in range(n):
        after = cron.next_after(text, after)
        out.append(after)
    return out


@pytest.mark.parametrize(("text", "expected"), [
    ("0/5 0/1 * 1/1 * ?", ["08:00:05", "08:00:10", "08:00:15"]),  # Camunda Modeler's example
    ("0 0/10 * * * ?", ["08:10:00", "08:20:00", "08:30:00"]),
    ("30 15 9 * * ?", ["09:15:30"] * 3),
])
def test_seconds_come_first(text, expected):
    assert [d.strftime("%H:%M:%S") for d in nexts(text, MONDAY)] == expected


def test_weekdays_by_name_and_by_quartz_number():
    by_name = nexts("0 0 9 ? * MON-FRI", datetime(2026, 3, 6, 10, 0, tzinfo=timezone.utc), 2)  # a Friday
    assert [d.strftime("%a %d %H:%M") for d in by_name] == ["Mon 09 09:00", "Tue 10 09:00"]
    # Quartz counts 1=SUN … 7=SAT: 2-6 is MON-FRI, 1 is Sunday, 7 Saturday
    assert nexts("0 0 9 ? * 2-6", MONDAY, 5) == nexts("0 0 9 ? * MON-FRI", MONDAY, 5)
    assert [d.strftime("%a") for d in nexts("0 0 9 ? * 1,7", MONDAY, 2)] == ["Sat", "Sun"]
    assert [d.strftime("%a") for d in nexts("0 0 9 ? * FRI-MON", MONDAY, 4)] == ["Mon", "Fri", "Sat", "Sun"]


def test_last_and_nth_weekday_of_the_month():
    assert cron.next_after("0 0 12 L * ?", MONDAY).date().isoformat() == "2026-03-31"
    assert cron.next_after("0 0 12 ? * 6L", MONDAY).date().isoformat() == "2026-03-27"  # last Friday
    assert cron.next_after("0 0 12 ? * 6#3", MONDAY).date().isoformat() == "2026-03-20"  # third Friday


def test_the_optional_year_field():
    assert cron.next_after("0 15 10 ? * * 2027", MONDAY) == datetime(2027, 1, 1, 10, 15, tzinfo=timezone.utc)
    assert cron.next_after("0 15 10 ? * * 2025", MONDAY) is None  # never again


@pytest.mark.parametrize(("text", "field"), [
    ("0 0 25 * * ?", "hours: '25'"),
    ("0 61 * * * ?", "minutes: '61'"),
    ("0 0 9 32 * ?", "day-of-month: '32'"),
    ("0 0 9 ? 13 *", "month: '13'"),
    ("0 0 9 ? * 8", "day-of-week: 8 is not a day of the week"),
    ("0 0 9 15W * ?", "day-of-month: '15W'"),
    ("0 0 9 1 * MON", "one of them must be '?'"),
])
def test_a_bad_expression_names_the_field(text, field):
    with pytest.raises(cron.CronError) as info:
        cron.trigger(text)
    assert field in str(info.value)


@pytest.mark.parametrize(("text", "is_cron"), [
    ("0 0 9 ? * MON-FRI", True), ("0/5 0/1 * 1/1 * ?", True), ("0 15 10 ? * * 2027", True),
    ("R3/PT10M", False), ("PT5M", False), ("${cycle}", False), ("* * * * *", False), ("", False),
])
def test_cron_is_told_from_iso_and_expressions(text, is_cron):
    assert cron.is_cron(text) is is_cron
