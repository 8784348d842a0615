"""Deployment refuses what cannot run, naming file, line and element; a refused file deploys nothing."""

from __future__ import annotations

import time

import pytest

from engine.definitions import read_source
from engine.errors import DeploymentError, Problem
from tests.conftest import FIXTURES
from tests.unit.test_deploy_support import (
    BPMN_HEAD,
    bpmn,
    line_of,
    linear,
    only,
    process_xml,
    render,
    user_task,
)

OK = linear("ok_process", user_task("Review"))


def refused(runtime, name: str, content: bytes) -> list[Problem]:
    """Deploy one file that must be refused; check that nothing was stored and return the problems."""
    before = runtime.definitions_list(all_versions=True)
    report = runtime.deploy([(name, content)])
    assert not report.ok and report.problems, "the file was accepted"
    assert report.results == []
    assert runtime.definitions_list(all_versions=True) == before
    for problem in report.problems:
        assert problem.file == name
        assert str(problem).startswith(f"{name}:{problem.line if problem.line is not None else '?'}: "
                                       f"{problem.element}: ")
    return report.problems


def test_valid_file_deploys(runtime):
    report = runtime.deploy([("ok.bpmn", OK)])
    assert report.ok and [str(r) for r in report.results] == ["ok_process v1"]
    assert [d["key"] for d in runtime.definitions_list()] == ["ok_process"]


# ---------------------------------------------------------------- 1. malformed XML
def test_malformed_xml_reports_the_line_of_the_syntax_error(runtime):
    lines = (FIXTURES / "simple_review.bpmn").read_text().splitlines()
    lines[11] = lines[11] + " <bpmn:broken attr=oops>"  # line 12: unquoted attribute value
    content = ("\n".join(lines) + "\n").encode()
    problem = only(refused(runtime, "broken.bpmn", content))
    assert problem.line == 12
    assert problem.element == "xml"
    assert problem.message.startswith("malformed XML")
    assert str(problem).startswith("broken.bpmn:12: xml: malformed XML")


def test_unclosed_tag_reports_a_line(runtime):
    content = OK.replace(b"</bpmn:process>", b"")
    problem = only(refused(runtime, "unclosed.bpmn", content))
    assert problem.element == "xml" and isinstance(problem.line, int) and problem.line >= 1


@pytest.mark.parametrize("content", [b"", b"   \n", b"not xml at all", b"<?xml version='1.0'?>"])
def test_empty_or_garbage_file(runtime, content):
    problem = only(refused(runtime, "garbage.bpmn", content))
    assert problem.element == "xml"


# ---------------------------------------------------------------- 2. XXE and billion laughs
XXE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
    + BPMN_HEAD.split("\n", 1)[1]
    + process_xml("xxe", '<bpmn:userTask id="T" camunda:candidateGroups="g"><bpmn:documentation>&e;'
                  '</bpmn:documentation></bpmn:userTask>')
    + "</bpmn:definitions>\n"
).encode()

LAUGHS = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE lolz [\n'
    ' <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10))
    + "]>\n"
    + BPMN_HEAD.split("\n", 1)[1]
    + process_xml("laughs", '<bpmn:userTask id="T" camunda:candidateGroups="g"><bpmn:documentation>&lol9;'
                  '</bpmn:documentation></bpmn:userTask>')
    + "</bpmn:definitions>\n"
).encode()


@pytest.mark.parametrize(("name", "content"), [("xxe.bpmn", XXE), ("laughs.bpmn", LAUGHS)])
def test_doctype_and_entities_are_refused_quickly(runtime, name, content):
    started = time.perf_counter()
    problems = refused(runtime, name, content)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"refusing took {elapsed:.2f}s"
    problem = only(problems)
    assert problem.line == 2 and problem.element == "DOCTYPE"
    assert "document type declarations and entities" in problem.message
    try:
        with open("/etc/passwd", encoding="utf-8") as fh:
            secrets = [line.split(":")[0] for line in fh if line.strip()]
    except OSError:
        secrets = ["root"]
    text = render(problems)
    assert "root:" not in text and "/bin/" not in text
    for user in secrets:
        assert f"{user}:x:" not in text


def test_read_source_refuses_entities_without_expanding_them():
    source = read_source("laughs.bpmn", LAUGHS)
    assert source.root is None and only(source.problems).element == "DOCTYPE"


def test_doctype_hidden_behind_utf16_is_refused(runtime):
    content = XXE.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    problems = refused(runtime, "xxe16.bpmn", content)
    assert "passwd" not in render(problems).replace("file:///etc/passwd", "")
    assert all("root:" not in p.message for p in problems)


# ---------------------------------------------------------------- 3. size limit
def test_file_over_the_size_limit_is_refused_with_the_sizes(runtime):
    padding = b"<!-- " + b"x" * 6 * 1024 * 1024 + b" -->\n"
    content = OK.replace(b"</bpmn:definitions>", padding + b"</bpmn:definitions>")
    problem = only(refused(runtime, "huge.bpmn", content))
    assert problem.element == "file"
    assert f"{len(content):,} bytes" in problem.message and "5,242,880 bytes" in problem.message


def test_max_bytes_parameter(db):
    from engine.definitions import DefinitionStore

    store = DefinitionStore()
    with db.write() as session:
        report = store.deploy(session, [("ok.bpmn", OK)], "lena", max_bytes=100)
    problem = only(report.problems)
    assert problem.element == "file" and f"{len(OK):,} bytes" in problem.message and "100 bytes" in problem.message
    assert report.results == []
    assert read_source("ok.bpmn", OK, max_bytes=len(OK)).problems == []
    assert only(read_source("ok.bpmn", OK, max_bytes=len(OK) - 1).problems).element == "file"


# ---------------------------------------------------------------- 4. no executable process
@pytest.mark.parametrize("executable", ["false", None])
def test_no_executable_process(runtime, executable):
    content = linear("draft", user_task("Review"), executable=executable)
    problem = only(refused(runtime, "draft.bpmn", content))
    assert problem.line == line_of(content, '<bpmn:process id="draft"')
    assert problem.element == "process"
    assert 'isExecutable="true"' in problem.message


def test_collaboration_without_process(runtime):
    content = bpmn(outside='  <bpmn:collaboration id="Collab" />\n')
    problem = only(refused(runtime, "collab.bpmn", content))
    assert problem.element == "process" and "no executable process" in problem.message


def test_a_dmn_file_is_not_mistaken_for_bpmn(runtime):
    content = b'<?xml version="1.0"?>\n<foo xmlns="urn:other"/>\n'
    problem = only(refused(runtime, "other.bpmn", content))
    assert problem.line == 2 and "not a BPMN 2.0 document" in problem.message


# ---------------------------------------------------------------- 5. assignability
def test_user_task_nobody_is_assigned_deploys_with_a_warning(runtime):
    content = linear("orphan", user_task("Assigned"), '<bpmn:userTask id="Nobody" name="Who?" />')
    report = runtime.deploy([("orphan.bpmn", content)])
    assert report.ok and [(r.key, r.version) for r in report.results] == [("orphan", 1)]
    warning = only(report.warnings)
    assert warning.is_warning and warning.line == line_of(content, 'id="Nobody"')
    assert warning.element == 'userTask Nobody "Who?"'
    assert "Unassigned queue" in warning.message
    assert str(warning) == f"orphan.bpmn:{warning.line}: userTask Nobody \"Who?\": warning: {warning.message}"


def test_assignee_or_candidate_groups_suffice(runtime, lead):
    content = linear("assigned", '<bpmn:userTask id="A" camunda:assignee="lena.lead" />',
                     '<bpmn:userTask id="B" camunda:candidateGroups="${group}" />')
    report = runtime.deploy([("assigned.bpmn", content)])
    assert report.ok, render(report.problems)


LANES = """    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_QA" name="quality_team">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>InLane</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>"""


def test_task_in_a_lane_is_assignable_and_the_lane_is_its_group(runtime, lead):
    from engine.views import Actor

    content = bpmn(process_xml("laned", '<bpmn:userTask id="InLane" name="In the lane" />', extra=LANES))
    report = runtime.deploy([("laned.bpmn", content)])
    assert report.ok, render(report.problems)
    instance = runtime.start("laned", {}, lead)
    member = Actor("quinn", frozenset({"quality_team"}), "employee")
    tasks = runtime.tasks(member)
    assert [(t.spec_id, t.groups) for t in tasks] == [("InLane", ["quality_team"])]
    runtime.complete(tasks[0].id, member, {})
    assert runtime.instance(instance.id).status == "completed"


# ---------------------------------------------------------------- 6. expressions that do not compile
def test_every_bad_expression_is_listed_with_element_and_line(runtime):
    nodes = [
        '<bpmn:scriptTask id="Imports" scriptFormat="python"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>',
        '<bpmn:scriptTask id="Loops" scriptFormat="python"><bpmn:script>while True:\n    pass</bpmn:script>'
        "</bpmn:scriptTask>",
        '<bpmn:userTask id="Dunder" camunda:assignee="${__import__(\'os\')}" />',
        '<bpmn:intermediateCatchEvent id="Wait"><bpmn:timerEventDefinition id="WaitDef">'
        "<bpmn:timeDuration>${amount &gt;}</bpmn:timeDuration></bpmn:timerEventDefinition>"
        "</bpmn:intermediateCatchEvent>",
        '<bpmn:exclusiveGateway id="Gw" default="f3" />',
    ]
    conditional = ('    <bpmn:sequenceFlow id="Cond" sourceRef="Gw" targetRef="end">'
                   '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${amount &gt;}'
                   "</bpmn:conditionExpression></bpmn:sequenceFlow>")
    content = bpmn(process_xml("bad_expr", *nodes, extra=conditional))
    problems = refused(runtime, "bad_expr.bpmn", content)
    found = {(p.element.split()[1], p.line) for p in problems}
    assert found == {
        ("Imports", line_of(content, 'id="Imports"')),
        ("Loops", line_of(content, 'id="Loops"')),
        ("Dunder", line_of(content, 'id="Dunder"')),
        ("Wait", line_of(content, 'id="Wait"')),
        ("Cond", line_of(content, 'id="Cond"')),
    }, render(problems)
    by_id = {p.element.split()[1]: p for p in problems}
    assert by_id["Imports"].element == "scriptTask Imports"
    assert "script does not compile" in by_id["Imports"].message and "import" in by_id["Imports"].message
    assert "while" in by_id["Loops"].message
    assert by_id["Dunder"].element == "userTask Dunder" and "camunda:assignee" in by_id["Dunder"].message
    assert by_id["Wait"].element == "intermediateCatchEvent Wait" and "timer" in by_id["Wait"].message
    assert by_id["Cond"].element == "sequenceFlow Cond" and "condition" in by_id["Cond"].message


def test_bad_script_on_a_later_line_of_a_multiline_script(runtime):
    script = "a = 1\nb = a.__class__\n"
    content = linear("dunder", f'<bpmn:scriptTask id="S" scriptFormat="python"><bpmn:script>{script}'
                               "</bpmn:script></bpmn:scriptTask>")
    problem = only(refused(runtime, "dunder.bpmn", content))
    assert problem.element == "scriptTask S"
    assert problem.line == line_of(content, 'id="S"')


@pytest.mark.parametrize("script", ["open('/etc/passwd').read()", "x = eval('1')", "exec('y = 1')"])
def test_io_and_eval_are_refused_at_deploy(runtime, script):
    content = linear("io", f'<bpmn:scriptTask id="S" scriptFormat="python"><bpmn:script>{script}'
                           "</bpmn:script></bpmn:scriptTask>")
    problem = only(refused(runtime, "io.bpmn", content))
    assert problem.element == "scriptTask S"
    assert "does not compile" in problem.message or "sandbox does not offer" in problem.message


def test_script_in_another_language(runtime):
    content = linear("js", '<bpmn:scriptTask id="S" scriptFormat="javascript"><bpmn:script>var a = 1;</bpmn:script>'
                           "</bpmn:scriptTask>")
    problem = only(refused(runtime, "js.bpmn", content))
    assert problem.element == "scriptTask S" and "javascript" in problem.message


# ---------------------------------------------------------------- 9. unsupported elements
UNSUPPORTED = [
    ('<bpmn:complexGateway id="X" />', "complexGateway X", "complex gateways are not supported"),
    ('<bpmn:serviceTask id="X" camunda:class="com.acme.Foo" />', "serviceTask X", 'camunda:type="external"'),
    ('<bpmn:serviceTask id="X" camunda:delegateExpression="${mailer}" />', "serviceTask X", "Java code"),
    ('<bpmn:sendTask id="X" />', "sendTask X", "send tasks"),
    ('<bpmn:scriptTask id="X" scriptFormat="groovy"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>',
     "scriptTask X", "rewrite the script in Python"),
    ('<bpmn:serviceTask id="X" camunda:type="external" />', "serviceTask X", "needs camunda:topic"),
    ('<bpmn:serviceTask id="X" camunda:type="external" camunda:topic="${t}" />', "serviceTask X", "expression"),
    ('<bpmn:sendTask id="X" camunda:type="external" camunda:topic="t" camunda:taskPriority="high" />', "sendTask X",
     "taskPriority"),
    ('<bpmn:task id="X"><bpmn:extensionElements><camunda:executionListener event="start" class="a.B" />'
     "</bpmn:extensionElements></bpmn:task>", "task X", 'execution listener with class="a.B" runs Java code'),
    ('<bpmn:task id="X"><bpmn:extensionElements><camunda:taskListener event="create"><camunda:script '
     'scriptFormat="javascript">x</camunda:script></camunda:taskListener></bpmn:extensionElements></bpmn:task>',
     "task X", 'task listener script format "javascript" is not supported'),
]


@pytest.mark.parametrize(("node", "element", "why"), UNSUPPORTED)
def test_unsupported_elements_are_refused_with_the_reason(runtime, node, element, why):
    content = linear("unsupported", node)
    problem = only(refused(runtime, "unsupported.bpmn", content))
    assert problem.element == element
    assert why in problem.message
    assert problem.line == line_of(content, node.split("<bpmn:extensionElements>")[-1].split(">")[0]
                                   if "extensionElements" in node else 'id="X"')


@pytest.mark.parametrize("tag", ["serviceTask", "sendTask", "businessRuleTask"])
def test_external_tasks_deploy(runtime, tag):
    content = linear("ext", f'<bpmn:{tag} id="X" camunda:type="external" camunda:topic="erp" '
                            'camunda:taskPriority="${prio}" />')
    report = runtime.deploy([("ext.bpmn", content)])
    assert report.problems == [] and [r.key for r in report.results] == ["ext"]


def test_data_store_reference_deploys_with_a_warning(runtime):
    content = bpmn(process_xml("store", user_task("T"),
                               extra='    <bpmn:dataStoreReference id="Store" name="CRM" />'))
    report = runtime.deploy([("store.bpmn", content)])
    assert report.ok and report.results[0].key == "store"
    warning = only(report.warnings)
    assert warning.element == 'dataStoreReference Store "CRM"'
    assert warning.line == line_of(content, 'id="Store"') and "ignored at run time" in warning.message


def test_documentation_only_elements_are_fine(runtime):
    extra = """    <bpmn:textAnnotation id="Note"><bpmn:text>Ask the customer first</bpmn:text></bpmn:textAnnotation>
    <bpmn:association id="Assoc" sourceRef="T" targetRef="Note" />
    <bpmn:group id="Group_1" categoryValueRef="CV_1" />"""
    content = bpmn(process_xml("documented", user_task("T"), extra=extra),
                   outside='  <bpmn:category id="Cat"><bpmn:categoryValue id="CV_1" value="Intake" />'
                           "</bpmn:category>\n")
    report = runtime.deploy([("documented.bpmn", content)])
    assert report.ok, render(report.problems)


def test_deploy_paths_raises_and_deploys_nothing(runtime, tmp_path):
    good = tmp_path / "a_good.bpmn"
    good.write_bytes(OK)
    bad = tmp_path / "b_bad.bpmn"
    bad.write_bytes(linear("bad", '<bpmn:serviceTask id="Java" camunda:class="com.acme.Mailer" />'))
    with pytest.raises(DeploymentError) as info:
        runtime.deploy_paths([tmp_path])
    problem = only(info.value.problems)
    assert problem.file == str(bad) and problem.element == "serviceTask Java"
    assert info.value.details == [problem.as_dict()]
    assert runtime.definitions_list() == []
