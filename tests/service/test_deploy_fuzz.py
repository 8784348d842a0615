"""Whatever bytes arrive, deployment answers with problems, never with an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.definitions import DefinitionStore, DeployReport, read_source
from engine.errors import Problem
from tests.conftest import FIXTURES
from tests.unit.test_deploy_support import decision_table, dmn

VALID = (FIXTURES / "simple_review.bpmn").read_bytes()
CAMUNDA = (FIXTURES / "camunda_modeler_complaint.bpmn").read_bytes()
VALID_DMN = dmn(decision_table("d1", "a", "b", [("&gt; 1", '"x"'), ("-", '"y"')]),
                decision_table("d2", "b", "c", [('"x"', "1")]))
SNIPPETS = [
    b"<bpmn:userTask id='U'/>", b"<bpmn:scriptTask id='S'><bpmn:script>x = </bpmn:script></bpmn:scriptTask>",
    b"<bpmn:callActivity id='C' calledElement='nowhere'/>", b"<bpmn:businessRuleTask id='B'/>",
    b"<bpmn:sequenceFlow id='F' sourceRef='a' targetRef='b'/>", b"<!-- note -->", b"<?pi data?>",
    b"<bpmn:boundaryEvent id='E' attachedToRef='missing'><bpmn:timerEventDefinition>"
    b"<bpmn:timeDuration>PTxH</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>",
    b"<![CDATA[ ]]>", b"&amp;", b"&unknown;", b"\xff\xfe", b"\x00", b"<bpmn:process id='simple_review'/>",
    b"<decision id='d1'/>", b"<bpmn:lane id='L'><bpmn:flowNodeRef>U</bpmn:flowNodeRef></bpmn:lane>",
]
SOURCES = [("review.bpmn", VALID), ("complaint.bpmn", CAMUNDA), ("rules.dmn", VALID_DMN)]


def _check(name: str, content: bytes) -> None:
    source = read_source(name, content)
    assert all(isinstance(p, Problem) and isinstance(str(p), str) for p in source.problems)
    if not source.problems:
        assert source.root is not None and source.kind in ("bpmn", "dmn")


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    name, content = draw(st.sampled_from(SOURCES))
    how = draw(st.sampled_from(["truncate", "splice", "delete", "flip"]))
    cut = draw(st.integers(0, len(content)))
    if how == "truncate":
        return name, content[:cut]
    if how == "splice":
        return name, content[:cut] + draw(st.sampled_from(SNIPPETS)) + content[cut:]
    if how == "delete":
        end = draw(st.integers(cut, min(len(content), cut + 200)))
        return name, content[:cut] + content[end:]
    byte = draw(st.integers(0, 255))
    return name, content[:cut] + bytes([byte]) + content[cut + 1:]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_give_problems(content):
    _check("random.bpmn", content)


@settings(max_examples=300, deadline=None)
@given(damaged())
def test_damaged_valid_files_never_raise_in_read_source(sample):
    _check(*sample)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.lists(st.one_of(damaged(), st.tuples(st.just("random.bpmn"), st.binary(max_size=500))),
                        min_size=1, max_size=3))
def test_deploy_never_raises(db, samples):
    store = DefinitionStore()
    with db.write() as session:  # commits: later examples build against what earlier ones deployed
        report = store.deploy(session, samples, "fuzz")
    assert isinstance(report, DeployReport)
    assert all(isinstance(p, Problem) for p in report.problems)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID)))
def test_every_truncation_of_a_valid_file_is_a_problem_not_a_crash(cut):
    source = read_source("review.bpmn", VALID[:cut])
    if cut < len(VALID.rstrip()):
        assert source.problems, f"truncated at {cut} but accepted"
