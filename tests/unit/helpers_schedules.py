"""Timer-start fixtures shared by the scheduled-start tests: a timeDate process and a runtime
whose starts fail for a while (a public `Runtime.start` override, no private names patched)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from engine.runtime import Runtime
from engine.views import InstanceView
from storage.db import Database
from tests.conftest import FIXTURES

WEEKLY = FIXTURES / "scheduler" / "weekly_review.bpmn"


def dated_process(folder: Path, at: datetime, key: str = "weekly_review", name: str = "Review open complaints") -> Path:
    """weekly_review with a `timeDate` start at `at` (and optionally another key or task name)."""
    xml = WEEKLY.read_text().replace("<bpmn:timeCycle>R3/PT10M</bpmn:timeCycle>",
                                     f"<bpmn:timeDate>{at.strftime('%Y-%m-%dT%H:%M:%SZ')}</bpmn:timeDate>")
    xml = xml.replace('"weekly_review"', f'"{key}"').replace("Review open complaints", name)
    path = folder / f"{key}_{len(list(folder.glob('*.bpmn')))}.bpmn"
    path.write_text(xml)
    return path


class FlakyRuntime(Runtime):
    """Starts raise `failures` times (a database that was briefly unreachable), then work."""

    def __init__(self, db: Database, failures: int) -> None:
        super().__init__(db)
        self.failures = failures
        self.calls = 0

    def start(self, *args: Any, **kwargs: Any) -> InstanceView:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("database hiccup")
        return super().start(*args, **kwargs)
