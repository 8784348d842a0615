"""`pdcaflow bench corpus` on a tiny corpus of our own (tests/fixtures/corpus), so the measuring tool is
itself tested without the outside corpus: a user task + timer model runs to its end, a Java delegate
is refused with its line and element, a business-rule task finds the DMN of its folder."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from benchmarks.corpus import Crash, _Recorder, form_values, read_model, run_corpus_bench, value_for
from engine import clock
from engine.errors import NotFoundError
from web.cli import main

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"


def _by_file(result: dict) -> dict[str, dict]:
    return {Path(f["file"]).name: f for f in result["per_file"]}


def test_the_runner_counts_deployed_refused_and_runs_to_the_end():
    result = run_corpus_bench([CORPUS])
    assert (result["files"], result["bpmn"], result["dmn"]) == (4, 3, 1)
    assert (result["deployed"], result["refused"], result["crashed_on_deploy"]) == (3, 1, 0)
    assert (result["processes_run"], result["ran_to_end"], result["files_ran_to_end"]) == (2, 2, 2)
    assert (result["incident"], result["stuck"], result["crashed_runs"], result["crashes"]) == (0, 0, 0, 0)
    assert result["run_problems"] == {}
    assert list(result["refusal_causes"].values()) == [["corpus/java_delegate.bpmn"]]
    files = _by_file(result)
    # the task's form was filled and the one-day timer fired by moving the engine clock
    review = files["review_then_wait.bpmn"]["runs"][0]
    assert review["status"] == "completed"
    assert review["actions"] == ["task:review", "timer"]
    assert files["rate_defect.bpmn"]["runs"][0]["status"] == "completed"
    refused = files["java_delegate.bpmn"]
    assert refused["outcome"] == "refused" and refused["runs"] == []
    assert refused["problems"][0].startswith("corpus/java_delegate.bpmn:7: serviceTask erp")
    assert files["defect_rating.dmn"]["outcome"] == "deployed"
    assert clock.offset().total_seconds() == 0  # the moved clock is put back


def test_cli_prints_the_totals_as_json_on_the_last_line():
    out = CliRunner().invoke(main, ["bench", "corpus", "--path", str(CORPUS), "--json"])
    assert out.exit_code == 0, out.output
    figures = json.loads(out.output.strip().splitlines()[-1])
    assert figures["bench"] == "corpus" and figures["ran_to_end"] == 2 and figures["refused"] == 1


def test_cli_report_names_each_file_and_its_outcome_and_groups_refusals_by_cause():
    # files given one by one: the business-rule task still finds the DMN of its folder
    out = CliRunner().invoke(main, ["bench", "corpus", "--path", str(CORPUS / "java_delegate.bpmn"),
                                    "--path", str(CORPUS / "review_then_wait.bpmn"),
                                    "--path", str(CORPUS / "rate_defect.bpmn")])
    assert out.exit_code == 0, out.output
    assert "java_delegate.bpmn: refused:" in out.output
    assert "review_then_wait.bpmn: deployed; corpus_review completed" in out.output
    assert "rate_defect.bpmn: deployed; corpus_rate completed" in out.output
    assert "refused because:\n    1  " in out.output


def test_an_exception_escaping_the_service_layer_is_recorded_as_a_crash_an_engine_error_is_not():
    crashes: list[Crash] = []
    rec = _Recorder("model.bpmn", crashes)

    def not_found():
        raise NotFoundError("no such instance")

    def broken():
        raise TypeError("value of type BpmnEvent cannot be stored")

    assert rec.call("read", not_found) == (None, "NotFoundError: no such instance", False)
    assert crashes == []
    _, error, crashed = rec.call("complete 'Review'", broken)
    assert crashed and error == "TypeError: value of type BpmnEvent cannot be stored"
    assert crashes[0].during == "complete 'Review'" and crashes[0].where.endswith(f":{broken.__code__.co_firstlineno + 1}")


def test_form_values_follow_the_field_type_and_change_when_a_task_comes_back():
    enum = {"id": "level", "type": "enum", "options": [{"id": "minor"}, {"id": "major"}]}
    assert [value_for(enum, n) for n in range(3)] == ["minor", "major", "minor"]
    assert value_for({"id": "ok", "type": "boolean"}) is True
    assert value_for({"id": "ok", "type": "boolean"}, 1) is False
    assert value_for({"id": "n", "type": "long"}) == 1
    assert value_for({"id": "s", "type": "string", "default": "d"}) == "d"
    assert value_for({"id": "s", "type": "string"}) == "x"
    assert value_for({"id": "s", "type": "string"}, 1, ["Yes", "No"]) == "No"


def test_a_generic_form_gets_the_variables_the_models_conditions_test():
    generic = [{"id": "*", "type": "variables"}]
    assert form_values(generic, 0, {"decision": ["Yes", "No"]}, {"approved"}) == {"approved": True, "decision": "Yes"}
    assert form_values(generic, 1, {"decision": ["Yes", "No"]}, {"approved"}) == {"approved": False, "decision": "No"}


def test_reading_a_model_finds_its_processes_how_they_start_and_what_conditions_test(tmp_path):
    model = read_model(CORPUS / "review_then_wait.bpmn")
    assert model.processes == {"corpus_review": "none"}
    path = tmp_path / "m.bpmn"
    path.write_text(
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        '<bpmn:message id="m1" name="order placed"/>'
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s">'
        '<bpmn:messageEventDefinition messageRef="m1"/></bpmn:startEvent>'
        '<bpmn:callActivity id="c" calledElement="q"/>'
        '<bpmn:sequenceFlow id="f" sourceRef="s" targetRef="c"><bpmn:conditionExpression>'
        "${!approved}</bpmn:conditionExpression></bpmn:sequenceFlow>"
        '<bpmn:sequenceFlow id="g" sourceRef="s" targetRef="c"><bpmn:conditionExpression>'
        "level == 'major'</bpmn:conditionExpression></bpmn:sequenceFlow></bpmn:process>"
        '<bpmn:process id="diagram_only" isExecutable="false"/></bpmn:definitions>')
    model = read_model(path)
    assert model.processes == {"p": "message:order placed"}
    assert model.called == {"q"} and model.defined == {"p", "diagram_only"}
    assert model.flags == {"approved"} and model.literals == {"level": ["major"]}
