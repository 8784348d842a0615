"""Decisions and called processes: references resolve across a batch and across deployments,
several decisions in one DMN file, and versioning of processes and the rules they use."""

from __future__ import annotations

from tests.unit.test_deploy_support import (
    decision_table,
    dmn,
    line_of,
    linear,
    only,
    render,
    user_task,
)


def rule_task(tid: str, decision: str) -> str:
    return f'<bpmn:businessRuleTask id="{tid}" camunda:decisionRef="{decision}" />'


def call(tid: str, called: str) -> str:
    return f'<bpmn:callActivity id="{tid}" calledElement="{called}" />'


TRIAGE = linear("triage", rule_task("Decide", "priority"), user_task("Handle"))
PRIORITY = dmn(decision_table("priority", "severity", "prio",
                              [('"high"', '"P1"'), ("-", '"P3"')]))
MULTI = dmn(
    decision_table("category", "product", "category", [('"boiler"', '"heating"'), ("-", '"other"')]),
    decision_table("route", "category", "team", [('"heating"', '"heating_team"'), ("-", '"general"')]),
    decision_table("refund", "amount", "refund", [("&gt; 100", '"manual"'), ("-", '"auto"')]),
)


def keys(runtime) -> list[tuple[str, int]]:
    return [(d["key"], d["version"]) for d in runtime.definitions_list()]


def results(report) -> list[str]:
    assert report.ok, render(report.problems)
    return sorted(str(r) for r in report.results)


# ---------------------------------------------------------------- 7. decisionRef
def test_unresolved_decision_is_refused(runtime):
    report = runtime.deploy([("triage.bpmn", TRIAGE)])
    problem = only(report.problems)
    assert problem.file == "triage.bpmn"
    assert problem.line == line_of(TRIAGE, 'id="Decide"')
    assert "Decide" in problem.element and "businessRuleTask" in problem.element
    assert "priority" in problem.message
    assert report.results == [] and runtime.definitions_list() == []


def test_decision_deployed_first_resolves(runtime, lead):
    assert results(runtime.deploy([("priority.dmn", PRIORITY)])) == ["priority v1"]
    assert results(runtime.deploy([("triage.bpmn", TRIAGE)])) == ["triage v1"]
    instance = runtime.start("triage", {"severity": "high"}, lead)
    assert instance.data["prio"] == "P1"


def test_decision_in_the_same_batch_resolves_in_any_order(runtime, lead):
    assert results(runtime.deploy([("triage.bpmn", TRIAGE), ("priority.dmn", PRIORITY)])) == [
        "priority v1", "triage v1"]
    assert runtime.start("triage", {"severity": "low"}, lead).data["prio"] == "P3"


# ---------------------------------------------------------------- 8. callActivity
MAIN = linear("main", user_task("Intake"), call("CallSub", "sub"))
SUB = linear("sub", '<bpmn:scriptTask id="Mark" scriptFormat="python"><bpmn:script>marked = True</bpmn:script>'
                    "</bpmn:scriptTask>")


def test_called_process_not_deployed_is_refused(runtime):
    report = runtime.deploy([("main.bpmn", MAIN)])
    problem = only(report.problems)
    assert problem.file == "main.bpmn"
    assert problem.line == line_of(MAIN, 'id="CallSub"')
    assert "CallSub" in problem.element and "callActivity" in problem.element
    assert "sub" in problem.message and "not deployed" in problem.message
    assert report.results == [] and runtime.definitions_list() == []


def test_called_process_in_the_same_batch(runtime, lead, reviewer):
    assert results(runtime.deploy([("main.bpmn", MAIN), ("sub.bpmn", SUB)])) == ["main v1", "sub v1"]
    instance = runtime.start("main", {}, lead)
    task = runtime.tasks(reviewer, instance_id=instance.id)[0]
    instance = runtime.complete(task.id, reviewer, {})
    assert instance.status == "completed" and instance.data.get("marked") is True


def test_called_process_deployed_earlier(runtime, lead):
    assert results(runtime.deploy([("sub.bpmn", SUB)])) == ["sub v1"]
    assert results(runtime.deploy([("main.bpmn", MAIN)])) == ["main v1"]


def test_bad_file_in_a_batch_does_not_block_the_good_ones(runtime):
    bad = linear("bad", '<bpmn:serviceTask id="Java" camunda:class="com.acme.Mailer" />')
    report = runtime.deploy([("sub.bpmn", SUB), ("bad.bpmn", bad)])
    assert [p.file for p in report.problems] == ["bad.bpmn"]
    assert [str(r) for r in report.results] == ["sub v1"]
    assert keys(runtime) == [("sub", 1)]


# ---------------------------------------------------------------- 10. DMN with several decisions
def test_each_decision_of_a_file_is_its_own_key(runtime):
    assert results(runtime.deploy([("rules.dmn", MULTI)])) == ["category v1", "refund v1", "route v1"]
    assert keys(runtime) == [("category", 1), ("refund", 1), ("route", 1)]


def test_a_process_can_use_any_decision_of_a_multi_decision_file(runtime, lead):
    process = linear("routing", rule_task("Categorise", "category"), rule_task("Route", "route"),
                     rule_task("Refund", "refund"))
    assert results(runtime.deploy([("rules.dmn", MULTI), ("routing.bpmn", process)])) == [
        "category v1", "refund v1", "route v1", "routing v1"]
    instance = runtime.start("routing", {"product": "boiler", "amount": 500}, lead)
    assert instance.status == "completed", instance.incidents
    assert instance.data["category"] == "heating"
    assert instance.data["team"] == "heating_team"       # 2nd decision of the file
    assert instance.data["refund"] == "manual"           # 3rd decision of the file
    other = runtime.start("routing", {"product": "kettle", "amount": 5}, lead)
    assert (other.data["category"], other.data["team"], other.data["refund"]) == ("other", "general", "auto")


def test_second_decision_alone(runtime, lead):
    process = linear("route_only", rule_task("Route", "route"))
    assert results(runtime.deploy([("rules.dmn", MULTI)]))
    assert results(runtime.deploy([("route_only.bpmn", process)])) == ["route_only v1"]
    assert runtime.start("route_only", {"category": "heating"}, lead).data["team"] == "heating_team"


def test_literal_expression_decision_deploys_and_decides(runtime, lead):
    content = dmn(decision_table("ok_one", "a", "b", [("-", '"x"')])) .replace(
        b"</definitions>",
        b'  <decision id="lit" name="Literal">\n'
        b'    <literalExpression id="lit_expr"><text>a + 1</text></literalExpression>\n'
        b"  </decision>\n</definitions>")
    report = runtime.deploy([("lit.dmn", content)])
    assert report.problems == []
    assert sorted(results(report)) == ["lit v1", "ok_one v1"]
    assert runtime.evaluate_decision("lit", {"a": 41}, lead) == [{"Literal": 42}]


def test_required_decision_deploys_and_feeds_its_user(runtime, lead):
    table = decision_table("needs", "ok_one", "b", [('"x"', '"from x"'), ("-", '"other"')], name="Needs another")
    table = table.replace('<decisionTable', '<informationRequirement id="req">'
                          '<requiredDecision href="#ok_one" /></informationRequirement>\n    <decisionTable')
    content = dmn(decision_table("ok_one", "a", "b", [("-", '"x"')]), table)
    report = runtime.deploy([("req.dmn", content)])
    assert report.problems == []
    assert runtime.evaluate_decision("needs", {"a": 1}, lead) == [{"b": "from x"}]


def test_required_decision_missing_is_refused(runtime):
    table = decision_table("needs", "a", "b", [("-", '"x"')], name="Needs another")
    table = table.replace('<decisionTable', '<informationRequirement id="req">'
                          '<requiredDecision href="#gone" /></informationRequirement>\n    <decisionTable')
    content = dmn(table)
    report = runtime.deploy([("req.dmn", content)])
    problem = only(report.problems)
    assert problem.line == line_of(content, 'requiredDecision href="#gone"')
    assert "requires decision 'gone'" in problem.message
    assert runtime.definitions_list() == []


def test_bad_rule_entry_is_refused_with_its_line(runtime):
    content = dmn(decision_table("broken", "amount", "r", [(">= >=", '"x"'), ("-", "__import__('os')")]))
    report = runtime.deploy([("broken.dmn", content)])
    assert len(report.problems) == 2, render(report.problems)
    by_element = {p.element: p for p in report.problems}
    assert by_element["rule broken_r0"].line == line_of(content, 'id="broken_r0"')
    assert by_element["rule broken_r1"].line == line_of(content, 'id="broken_r1"')
    assert "__import__" in by_element["rule broken_r1"].message
    assert runtime.definitions_list() == []


# ---------------------------------------------------------------- 11. versioning
def test_identical_redeploy_is_unchanged_and_changed_xml_is_a_new_version(runtime):
    simple = linear("versioned", user_task("Review"))
    assert results(runtime.deploy([("v.bpmn", simple)])) == ["versioned v1"]
    again = runtime.deploy([("v.bpmn", simple)])
    assert [(r.key, r.version, r.unchanged) for r in again.results] == [("versioned", 1, True)]
    assert str(again.results[0]) == "versioned v1 unchanged"
    changed = simple.replace(b'name="Review task"', b'name="Review the task"')
    assert results(runtime.deploy([("v.bpmn", changed)])) == ["versioned v2"]
    assert results(runtime.deploy([("v.bpmn", changed)])) == ["versioned v2 unchanged"]
    assert [(d["key"], d["version"]) for d in runtime.definitions_list(all_versions=True)] == [
        ("versioned", 1), ("versioned", 2)]


def test_running_instance_stays_on_its_version(runtime, lead, reviewer):
    v1 = linear("versioned", user_task("Review"))
    v2 = linear("versioned", user_task("Review"), user_task("SecondLook"))
    runtime.deploy_paths  # noqa: B018 - API exists
    assert results(runtime.deploy([("v.bpmn", v1)])) == ["versioned v1"]
    old = runtime.start("versioned", {}, lead)
    assert results(runtime.deploy([("v.bpmn", v2)])) == ["versioned v2"]
    new = runtime.start("versioned", {}, lead)
    assert (runtime.instance(old.id).version, new.version) == (1, 2)
    task = runtime.tasks(reviewer, instance_id=old.id)[0]
    done = runtime.complete(task.id, reviewer, {})
    assert done.status == "completed" and done.version == 1
    task = runtime.tasks(reviewer, instance_id=new.id)[0]
    after_first = runtime.complete(task.id, reviewer, {})
    assert after_first.status == "running"
    assert [t.spec_id for t in after_first.tasks if t.state == "open"] == ["SecondLook"]


def test_changing_a_decision_reversions_its_processes(runtime, lead, reviewer):
    assert results(runtime.deploy([("priority.dmn", PRIORITY), ("triage.bpmn", TRIAGE)])) == [
        "priority v1", "triage v1"]
    old = runtime.start("triage", {"severity": "high"}, lead)
    assert old.data["prio"] == "P1"

    stricter = PRIORITY.replace(b'"P1"', b'"P0"')
    report = runtime.deploy([("priority.dmn", stricter)])
    assert report.ok, render(report.problems)
    by_key = {r.key: r for r in report.results}
    assert (by_key["priority"].version, by_key["priority"].unchanged) == (2, False)
    assert (by_key["triage"].version, by_key["triage"].unchanged) == (2, False)
    assert "priority" in by_key["triage"].reason
    assert "priority" in str(by_key["triage"])

    new = runtime.start("triage", {"severity": "high"}, lead)
    assert (new.version, new.data["prio"]) == (2, "P0")
    # the old instance keeps its version and finishes on it
    old_view = runtime.instance(old.id)
    assert (old_view.version, old_view.data["prio"]) == (1, "P1")
    task = runtime.tasks(reviewer, instance_id=old.id)[0]
    assert runtime.complete(task.id, reviewer, {}).status == "completed"
    # an instance started explicitly on v1 still uses the old rules
    assert runtime.start("triage", {"severity": "high"}, lead, version=1).data["prio"] == "P1"

    # redeploying the same decision again changes nothing
    again = runtime.deploy([("priority.dmn", stricter)])
    assert [(r.key, r.version, r.unchanged) for r in again.results] == [("priority", 2, True)]
    assert runtime.deploy([("triage.bpmn", TRIAGE)]).results[0].unchanged


def test_changing_one_decision_of_a_file_reversions_only_its_users(runtime, lead):
    uses_route = linear("uses_route", rule_task("Route", "route"))
    uses_refund = linear("uses_refund", rule_task("Refund", "refund"))
    runtime.deploy([("rules.dmn", MULTI), ("a.bpmn", uses_route), ("b.bpmn", uses_refund)])
    changed = MULTI.replace(b'"heating_team"', b'"boiler_team"')
    report = runtime.deploy([("rules.dmn", changed)])
    assert report.ok, render(report.problems)
    changed_keys = sorted((r.key, r.version) for r in report.results if not r.unchanged)
    assert changed_keys == [("route", 2), ("uses_route", 2)]
    assert sorted(r.key for r in report.results if r.unchanged) == ["category", "refund"]
    # the other decisions of the file still resolve from their (unchanged) versions
    assert runtime.start("uses_refund", {"amount": 1}, lead).data["refund"] == "auto"
    assert runtime.start("uses_route", {"category": "heating"}, lead).data["team"] == "boiler_team"
