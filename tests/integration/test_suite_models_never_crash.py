"""Every BPMN/DMN file the test suite and the process library hold — the construct suite's models
(including the malicious scripts), the fixtures, processes/ — deployed, started and driven by the
corpus runner: none may make an exception escape the service layer (what the API would answer
with a 5xx). Incidents and refusals are fine; they are the clear errors users get."""

from __future__ import annotations

from pathlib import Path

from benchmarks.corpus import run_corpus_bench

ROOT = Path(__file__).resolve().parents[2]


def test_no_model_in_the_suite_crashes_the_engine():
    result = run_corpus_bench([ROOT / "tests" / "constructs" / "models", ROOT / "tests" / "fixtures",
                               ROOT / "processes"])
    assert result["files"] >= 100
    assert result["crashed_on_deploy"] == 0 and result["crashes"] == 0, result["crash_list"]
    assert result["ran_to_end"] >= 50  # most of them run to their end with the runner's generic values
