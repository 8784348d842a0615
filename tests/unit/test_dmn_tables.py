"""Decision tables and hit policies (engine/dmn/tables.py), decision graphs (graph.py) and
Camunda's mapDecisionResult (engine/decisions.py)."""

from __future__ import annotations

import pytest

from engine.decisions import map_decision_result, task_updates
from engine.dmn import DecisionEvaluationError, evaluate_decision, parse_definitions

HEAD = '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">'


def table(hit: str, rules: list[tuple[str, ...]], outputs: tuple[str, ...] = ("out",), aggregation: str = "",
          output_values: str = "", did: str = "t", requires: str = "") -> str:
    agg = f' aggregation="{aggregation}"' if aggregation else ""
    values = f"<outputValues><text>{output_values}</text></outputValues>" if output_values else ""
    req = f'<informationRequirement><requiredDecision href="#{requires}"/></informationRequirement>' if requires else ""
    cols = "".join(f'<output id="o{i}" name="{o}">{values if i == 0 else ""}</output>' for i, o in enumerate(outputs))
    body = "".join(
        f'<rule id="r{n}"><inputEntry><text>{r[0]}</text></inputEntry>'
        + "".join(f"<outputEntry><text>{o}</text></outputEntry>" for o in r[1:]) + "</rule>"
        for n, r in enumerate(rules, 1))
    return (f'<decision id="{did}" name="{did.upper()}">{req}<decisionTable hitPolicy="{hit}"{agg}>'
            f"<input><inputExpression><text>x</text></inputExpression></input>{cols}{body}</decisionTable></decision>")


def run(hit, rules, x, **kw):
    return evaluate_decision(parse_definitions(HEAD + table(hit, rules, **kw) + "</definitions>"), "t", {"x": x})


RULES = [("&gt; 10", '"big"'), ("&gt; 100", '"huge"'), ("-", '"any"')]


def test_unique_fails_naming_the_rules():
    with pytest.raises(DecisionEvaluationError, match="UNIQUE.*'r1', 'r3'"):
        run("UNIQUE", RULES, 50)
    assert run("UNIQUE", [("&lt; 10", '"small"'), ("&gt;= 10", '"big"')], 3).rows == [{"out": "small"}]


def test_no_match_gives_no_rows_and_a_null_value():
    result = run("UNIQUE", [("&lt; 10", '"small"')], 30)
    assert result.rows == [] and result.value is None


def test_any_needs_agreeing_matches():
    assert run("ANY", [("&gt; 10", '"yes"'), ("&gt; 20", '"yes"')], 30).rows == [{"out": "yes"}]
    with pytest.raises(DecisionEvaluationError, match="ANY"):
        run("ANY", [("&gt; 10", '"yes"'), ("&gt; 20", '"no"')], 30)


def test_first_rule_order_and_collect():
    assert run("FIRST", RULES, 500).rows == [{"out": "big"}]
    assert run("RULE ORDER", RULES, 500).value == ["big", "huge", "any"]
    assert run("COLLECT", RULES, 50).value == ["big", "any"]


def test_priority_and_output_order_follow_output_values():
    values = '"any","huge","big"'
    assert run("PRIORITY", RULES, 500, output_values=values).rows == [{"out": "any"}]
    assert run("OUTPUT ORDER", RULES, 500, output_values=values).value == ["any", "huge", "big"]


@pytest.mark.parametrize(("aggregation", "expected"), [("SUM", 111), ("MIN", 1), ("MAX", 100), ("COUNT", 3)])
def test_collect_aggregations(aggregation, expected):
    rules = [("&gt; 10", "10"), ("&gt; 100", "100"), ("-", "1")]
    assert run("COLLECT", rules, 500, aggregation=aggregation).rows == [{"out": expected}]


def test_collect_count_of_nothing_is_zero_and_sum_of_nothing_is_no_row():
    assert run("COLLECT", [("&lt; 0", "1")], 5, aggregation="COUNT").rows == [{"out": 0}]
    assert run("COLLECT", [("&lt; 0", "1")], 5, aggregation="SUM").rows == []


def test_several_outputs_make_one_object_per_rule():
    rules = [("&gt; 10", '"big"', "2"), ("-", '"any"', "1")]
    result = run("RULE ORDER", rules, 50, outputs=("size", "weight"))
    assert result.rows == [{"size": "big", "weight": 2}, {"size": "any", "weight": 1}]


def test_required_decisions_are_evaluated_first_and_visible_by_name():
    doc = (HEAD + table("UNIQUE", [("&gt; 10", '"big"'), ("&lt;= 10", '"small"')], did="size")
           + '<decision id="label" name="Label"><informationRequirement><requiredDecision href="#size"/>'
           + '</informationRequirement><literalExpression><text>SIZE + " (" + out + ")"</text></literalExpression>'
           + "</decision></definitions>")
    assert evaluate_decision(parse_definitions(doc), "label", {"x": 50}).rows == [{"Label": "big (big)"}]


def test_map_decision_result_modes():
    rows = [{"a": 1}]
    assert map_decision_result(rows, "singleEntry") == 1
    assert map_decision_result(rows, "singleResult") == {"a": 1}
    assert map_decision_result(rows, "collectEntries") == [1]
    assert map_decision_result(rows, "resultList") == [{"a": 1}]
    assert map_decision_result([], "singleEntry") is None
    with pytest.raises(DecisionEvaluationError, match="singleEntry"):
        map_decision_result([{"a": 1}, {"a": 2}], "singleEntry")
    with pytest.raises(DecisionEvaluationError, match="singleEntry"):
        map_decision_result([{"a": 1, "b": 2}], "singleEntry")
    with pytest.raises(DecisionEvaluationError, match="collectEntries"):
        map_decision_result([{"a": 1, "b": 2}], "collectEntries")


def test_task_updates_without_result_variable_merge_outputs():
    doc = HEAD + table("RULE ORDER", RULES) + "</definitions>"
    assert task_updates(doc, "t", {"x": 500}, None, None) == {"out": ["big", "huge", "any"]}
    assert task_updates(doc, "t", {"x": 5}, None, None) == {"out": "any"}
    assert task_updates(doc, "t", {"x": 5}, "r", None) == {"r": [{"out": "any"}]}


def test_juel_and_python_expressions_run_in_the_sandbox():
    doc = (HEAD + '<decision id="t" name="T"><decisionTable hitPolicy="FIRST">'
           '<input><inputExpression expressionLanguage="juel"><text>${amount * 2}</text></inputExpression></input>'
           '<output name="out"/><rule><inputEntry><text>&gt; 100</text></inputEntry>'
           '<outputEntry expressionLanguage="python"><text>amount + 1</text></outputEntry></rule>'
           "</decisionTable></decision></definitions>")
    assert evaluate_decision(parse_definitions(doc), "t", {"amount": 60}).rows == [{"out": 61}]
    assert evaluate_decision(parse_definitions(doc), "t", {"amount": 40}).rows == []
    with pytest.raises(DecisionEvaluationError, match="juel expression"):
        evaluate_decision(parse_definitions(doc.replace("amount * 2", "__import__('os')")), "t", {"amount": 1})


def test_deploy_checks_name_rule_and_line():
    from engine.dmn.checks import problems_of
    doc = (HEAD + '\n<decision id="t" name="T"><decisionTable hitPolicy="UNIQUE">\n'
           "<input><inputExpression><text>x</text></inputExpression></input><output name=\"o\"/>\n"
           '<rule id="bad"><inputEntry><text>[1..</text></inputEntry><outputEntry><text>1</text></outputEntry></rule>\n'
           "</decisionTable></decision></definitions>")
    (problem,) = problems_of(parse_definitions(doc))
    assert (problem.line, problem.element) == (4, "rule bad")
    assert "input entry of rule 'bad'" in problem.message and "[1.." in problem.message


def test_camunda_cell_input_and_date_typed_inputs():
    doc = (HEAD + '<decision id="t" name="T"><decisionTable hitPolicy="FIRST">'
           '<input><inputExpression typeRef="date"><text>due</text></inputExpression></input>'
           '<output name="out"/>'
           '<rule><inputEntry><text>&lt; date("2024-01-01")</text></inputEntry><outputEntry><text>"late"</text>'
           '</outputEntry></rule>'
           '<rule><inputEntry><text>cellInput = date("2024-06-01")</text></inputEntry><outputEntry><text>"june"</text>'
           "</outputEntry></rule></decisionTable></decision></definitions>")
    model = parse_definitions(doc)
    assert evaluate_decision(model, "t", {"due": "2023-12-31"}).rows == [{"out": "late"}]
    assert evaluate_decision(model, "t", {"due": "2024-06-01"}).rows == [{"out": "june"}]
    assert evaluate_decision(model, "t", {"due": "2024-07-01"}).rows == []
