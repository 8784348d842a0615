"""`pdcaflow bench dmn-tck` on a small folder laid out as the DMN TCK lays out its test cases."""

from __future__ import annotations

import json

from click.testing import CliRunner

from benchmarks.dmn_tck import run_tck
from web.cli import main

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="m" name="m" namespace="x">
  <inputData id="i_age" name="Age"/>
  <decision id="d_status" name="Status">
    <informationRequirement><requiredInput href="#i_age"/></informationRequirement>
    <decisionTable hitPolicy="UNIQUE">
      <input><inputExpression typeRef="number"><text>Age</text></inputExpression></input>
      <output name="status"/>
      <rule><inputEntry><text>&gt;= 18</text></inputEntry><outputEntry><text>"adult"</text></outputEntry></rule>
      <rule><inputEntry><text>&lt; 18</text></inputEntry><outputEntry><text>"minor"</text></outputEntry></rule>
    </decisionTable>
  </decision>
  <decision id="d_next" name="Next Age">
    <informationRequirement><requiredInput href="#i_age"/></informationRequirement>
    <literalExpression><text>Age + 1.5</text></literalExpression>
  </decision>
</definitions>
"""

TESTS = """<?xml version="1.0" encoding="UTF-8"?>
<testCases xmlns="http://www.omg.org/spec/DMN/20160719/testcase"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <modelName>0001-demo.dmn</modelName>
  <testCase id="001">
    <inputNode name="Age"><value xsi:type="xsd:decimal">20</value></inputNode>
    <resultNode name="Status" type="decision"><expected><value xsi:type="xsd:string">adult</value></expected></resultNode>
    <resultNode name="Next Age" type="decision"><expected><value xsi:type="xsd:decimal">21.5</value></expected></resultNode>
  </testCase>
  <testCase id="002">
    <inputNode name="Age"><value xsi:type="xsd:decimal">3</value></inputNode>
    <resultNode name="Status" type="decision"><expected><value xsi:type="xsd:string">adult</value></expected></resultNode>
  </testCase>
</testCases>
"""


def _folder(tmp_path):
    case = tmp_path / "compliance" / "0001-demo"
    case.mkdir(parents=True)
    (case / "0001-demo.dmn").write_text(MODEL)
    (case / "0001-demo-test-01.xml").write_text(TESTS)
    return tmp_path / "compliance"


def test_runner_counts_each_expected_result(tmp_path):
    result = run_tck(_folder(tmp_path))
    assert (result["test_cases"], result["results"], result["passed"]) == (1, 3, 2)
    (failure,) = result["failures"]
    assert failure["case"] == "002" and "expected 'adult', got 'minor'" in failure["error"]


def test_cli_prints_the_pass_count(tmp_path):
    folder = _folder(tmp_path)
    out = CliRunner().invoke(main, ["bench", "dmn-tck", "--path", str(folder)])
    assert out.exit_code == 0, out.output
    assert "passed 2/3 test results" in out.output and "FAIL 0001-demo #002 Status" in out.output
    as_json = CliRunner().invoke(main, ["bench", "dmn-tck", "--path", str(folder), "--json"])
    assert json.loads(as_json.output.strip().splitlines()[-1])["passed"] == 2
