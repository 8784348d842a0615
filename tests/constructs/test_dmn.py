"""DMN as Camunda 7 runs it: business-rule tasks with each mapDecisionResult, a decision
requirement graph with a literal-expression decision, a UNIQUE violation as an incident, FEEL
unary tests (lists, not(...), ranges, dates) and direct evaluation through the API."""

from __future__ import annotations

import pytest


def evaluate(flow, key, variables, expect=200):
    return flow.call("POST", f"/api/v1/decisions/{key}/evaluate", expect, json={"variables": variables})


def test_rule_tasks_map_results_as_camunda(flow):
    flow.deploy("dmn_expenses.dmn", "dmn_rule_tasks.bpmn")
    instance = flow.start("dmn_rule_tasks", {"amount": 1200, "category": "Travel", "submitted": "2023-12-30"})
    assert flow.status(instance["id"]) == "completed"
    data = flow.variables(instance["id"])
    assert data["approver"] == "director"                       # singleEntry: the value
    assert data["flags"] == ["receipt required", "travel policy", "late submission", "board notice",
                             "not software"]                    # collectEntries: the values, rule order
    assert data["policy"] == {"approver": "director", "limit": 5000}  # singleResult: one output map
    assert data["rules"] == [{"rule": "over 100", "weight": 1}, {"rule": "over 500", "weight": 2},
                             {"rule": "always", "weight": 0}]   # resultList, Camunda's default
    assert data["tier"] == "silver"                             # no resultVariable: outputs merged


def test_list_and_not_tests_pick_the_rule(flow):
    flow.deploy("dmn_expenses.dmn", "dmn_rule_tasks.bpmn")
    instance = flow.start("dmn_rule_tasks", {"amount": 250, "category": "Misc", "submitted": "2024-02-01"})
    data = flow.variables(instance["id"])
    assert data["approver"] == "manager"        # [250..1000] includes 250; [0..250[ excludes it
    assert data["flags"] == ["not software"]
    assert data["policy"] == {"approver": "manager", "limit": 1000}
    other = flow.start("dmn_rule_tasks", {"amount": 20, "category": "Software", "submitted": "2024-02-01"})
    data = flow.variables(other["id"])
    assert data["approver"] == "purchasing"     # not("Misc","Travel")
    assert data["flags"] == []
    assert data["rules"] == [{"rule": "always", "weight": 0}]
    assert data["tier"] == "bronze"


def test_decision_graph_feeds_required_decisions_first(flow):
    flow.deploy("dmn_drg.dmn", "dmn_drg.bpmn")
    auto = flow.start("dmn_drg", {"amount": 120, "category": "Misc"})
    assert flow.status(auto["id"]) == "completed"
    assert flow.variables(auto["id"])["route"] == "auto"
    assert flow.variables(auto["id"])["days"] == 0
    big = flow.start("dmn_drg", {"amount": 9000, "category": "Travel"})
    assert [t["spec_id"] for t in flow.open_tasks(big["id"])] == ["review"]
    assert flow.variables(big["id"])["route"] == "board"
    assert flow.variables(big["id"])["days"] == 10
    flow.complete(big["id"], "review")
    assert flow.status(big["id"]) == "completed"


def test_unique_violation_is_an_incident_naming_the_rules(flow):
    flow.deploy("dmn_unique.dmn", "dmn_unique.bpmn")
    instance = flow.start("dmn_unique", {"amount": 800})
    assert flow.status(instance["id"]) == "incident"
    message = flow.incidents(instance["id"])[0]["message"]
    assert "UNIQUE" in message and "'overlapping_r1'" in message and "'overlapping_r2'" in message
    fine = flow.start("dmn_unique", {"amount": 50})
    assert flow.status(fine["id"]) == "completed"
    assert flow.variables(fine["id"])["size"] == "small"


def test_evaluate_endpoint(flow):
    flow.deploy("dmn_expenses.dmn", "dmn_drg.dmn", "dmn_unique.dmn")
    assert evaluate(flow, "expense_approver", {"amount": 999.5, "category": "Travel"}) == {
        "result": [{"approver": "manager"}]}
    assert evaluate(flow, "expense_rules", {"amount": 600}) == {"result": [
        {"rule": "over 100", "weight": 1}, {"rule": "over 500", "weight": 2}, {"rule": "always", "weight": 0}]}
    # COLLECT with SUM: one object holding the aggregate
    assert evaluate(flow, "expense_score", {"amount": 150, "category": "Travel"}) == {"result": [{"score": 16}]}
    # PRIORITY: the output value listed first wins, whatever the rule order
    assert evaluate(flow, "expense_tier", {"amount": 6000}) == {"result": [{"tier": "gold"}]}
    # a literal-expression decision of a graph
    assert evaluate(flow, "days_to_decide", {"amount": 700, "category": "Misc"}) == {
        "result": [{"Days to decide": 3}]}
    failed = evaluate(flow, "overlapping", {"amount": 900}, expect=422)
    assert "UNIQUE" in failed["error"]["message"] and "overlapping_r2" in failed["error"]["message"]
    evaluate(flow, "no_such_decision", {}, expect=404)
    unknown = evaluate(flow, "expense_approver", {"category": "Travel"}, expect=422)
    assert "amount" in unknown["error"]["message"]


@pytest.mark.parametrize("namespace", [
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd", "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/", "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/"])
def test_every_dmn_namespace_deploys_and_redeploying_a_decision_is_a_new_version(flow, tmp_path, namespace):
    from tests.constructs.conftest import MODELS
    text = (MODELS / "dmn_unique.dmn").read_text()
    text = text.replace("https://www.omg.org/spec/DMN/20191111/MODEL/", namespace)
    first = flow.call("POST", "/api/v1/processes?name=sizes.dmn", (200, 201), data=text.encode(),
                      content_type="application/xml")
    assert first == [{"key": "overlapping", "version": 1, "unchanged": False, "warnings": []}]
    moved = text.replace("&gt; 500", "&gt; 5000").replace('id="dmn_unique"', 'id="other_file"')
    second = flow.call("POST", "/api/v1/processes?name=other.dmn", (200, 201), data=moved.encode(),
                       content_type="application/xml")
    assert second == [{"key": "overlapping", "version": 2, "unchanged": False, "warnings": []}]
    assert evaluate(flow, "overlapping", {"amount": 900}) == {"result": [{"size": "big"}]}
