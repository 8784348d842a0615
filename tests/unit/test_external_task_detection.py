"""Whether a workflow has external tasks follows its spec, never a freed spec's memory address
(an id()-keyed cache once told a new spec "no external tasks" and its worker found nothing)."""

from __future__ import annotations

import gc
from types import SimpleNamespace

from engine.external_task_model import ExternalTask
from engine.runtime import spiff


class _Spec:
    def __init__(self, external: bool) -> None:
        task = ExternalTask.__new__(ExternalTask) if external else object()
        self.task_specs = {"lookup": task}


def _workflow(external: bool) -> SimpleNamespace:
    return SimpleNamespace(spec=_Spec(external), subprocess_specs={})


def test_answer_follows_the_spec_even_when_an_old_spec_was_freed():
    for _ in range(200):  # CPython hands a freed object's address to the next one of its size
        plain = _workflow(external=False)
        assert spiff.has_external_tasks(plain) is False
        del plain
        gc.collect()
        assert spiff.has_external_tasks(_workflow(external=True)) is True
