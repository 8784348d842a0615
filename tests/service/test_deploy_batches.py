"""Deploying a batch of files: two files of one name are refused (which one a process came from
could not be told), a model in another encoding than UTF-8 deploys and runs, and deploys of one key
at the same moment each get their own version (PostgreSQL: no two take the same number)."""

from __future__ import annotations

import threading

from engine.views import Actor
from tests.conftest import FIXTURES

LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
REVIEW = (FIXTURES / "simple_review.bpmn").read_bytes()


def test_two_files_of_one_name_in_a_batch_are_refused(runtime):
    renamed = REVIEW.replace(b'name="Assess request"', b'name="Other name"')
    report = runtime.deploy([("simple_review.bpmn", REVIEW), ("simple_review.bpmn", renamed)], LEAD)
    assert [(p.file, p.element) for p in report.problems] == [("simple_review.bpmn", "definitions")]
    assert "second file of this name" in report.problems[0].message
    # the first deployed; what is stored is what runs
    [definition] = runtime.definitions_list()
    assert definition["version"] == 1 and 'name="Assess request"' in runtime.definition_xml("simple_review")
    instance = runtime.start("simple_review", {}, LEAD)
    assert [t.name for t in instance.tasks] == ["Assess request"]


def test_a_model_in_latin_1_deploys_and_runs(runtime):
    latin = (REVIEW.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
             .replace(b'name="Assess request"', 'name="Prüfen Sie die Anfrage"'.encode("iso-8859-1")))
    report = runtime.deploy([("latin.bpmn", latin)], LEAD)
    assert report.problems == [] and [r.version for r in report.results] == [1]
    stored = runtime.definition_xml("simple_review")
    assert 'name="Prüfen Sie die Anfrage"' in stored and "UTF-8" in stored.splitlines()[0]
    instance = runtime.start("simple_review", {}, LEAD)
    assert [t.name for t in instance.tasks] == ["Prüfen Sie die Anfrage"]
    # the same file again is unchanged, not a new version
    assert [r.unchanged for r in runtime.deploy([("latin.bpmn", latin)], LEAD).results] == [True]


def test_deploys_of_one_key_at_the_same_moment_each_get_a_version(runtime):
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"], LEAD)
    errors: list[str] = []
    start = threading.Barrier(4)

    def deploy(i: int) -> None:
        start.wait()
        try:
            runtime.deploy([("simple_review.bpmn", REVIEW + f"<!-- change {i} -->".encode())], LEAD,
                           all_or_nothing=True)
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [d["version"] for d in runtime.definitions_list(all_versions=True)] == [1, 2, 3, 4, 5]
