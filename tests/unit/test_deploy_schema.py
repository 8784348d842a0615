"""BPMN 2.0 schema validation on deploy: the XSD catches what a hand-edited file gets wrong."""

from engine.definitions import read_source
from tests.conftest import FIXTURES


def _with_line(n: int, text: str) -> bytes:
    lines = (FIXTURES / "simple_review.bpmn").read_text().splitlines()
    lines.insert(n - 1, text)
    return "\n".join(lines).encode()


def test_unknown_bpmn_element_is_refused_with_its_line():
    content = _with_line(20, '      <bpmn:frobnicate id="x" />')
    source = read_source("odd.bpmn", content)
    schema = [p for p in source.problems if "not valid BPMN 2.0" in p.message]
    assert schema, source.problems
    assert schema[0].line == 20
    assert schema[0].element == "frobnicate"
    assert str(schema[0]).startswith("odd.bpmn:20: frobnicate: not valid BPMN 2.0")


def test_wrongly_typed_attribute_is_refused():
    content = (FIXTURES / "simple_review.bpmn").read_bytes().replace(b'isExecutable="true"', b'isExecutable="maybe"')
    source = read_source("typed.bpmn", content)
    messages = [str(p) for p in source.problems if "not valid BPMN 2.0" in p.message]
    assert any("isExecutable" in m for m in messages), source.problems


def test_camunda_modeler_files_are_schema_valid():
    for path in [FIXTURES / "simple_review.bpmn", FIXTURES / "camunda_modeler_complaint.bpmn"]:
        source = read_source(path.name, path.read_bytes())
        assert source.problems == []
