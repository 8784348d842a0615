"""Engine-independent checks of the shipped process library in ``processes/``.

* every file parses with SpiffWorkflow's Camunda parser (structure, call activities, DMN);
* BPMN DI is complete: every flow node (boundary events included), lane and participant has a
  BPMNShape with dc:Bounds, every sequence flow a BPMNEdge with at least two waypoints;
* the conventions the engine relies on: documentation on every step, an assignment on every
  user task, supported form field types, default flows on exclusive gateways, one decision per DMN.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
BPMN = f"{{{NS['bpmn']}}}"

# Elements inside a process that are not flow nodes
NOT_FLOW_NODES = {
    "documentation", "extensionElements", "sequenceFlow", "laneSet", "dataObject", "dataObjectReference",
    "dataStoreReference", "textAnnotation", "association", "ioSpecification", "property",
}
FORM_TYPES = {"string", "long", "boolean", "date", "enum"}
CONSTRAINTS = {"required", "min", "max", "minlength", "maxlength", "readonly"}

EXPECTED_PROCESSES = {
    "complaint_to_improvement.bpmn": "complaint_to_improvement",
    "rca_and_corrective_action.bpmn": "rca_and_corrective_action",
    "customer_feedback.bpmn": "customer_feedback",
    "supplier_nonconformity.bpmn": "supplier_nonconformity",
}

BPMN_FILES = sorted(PROCESSES.glob("*.bpmn"))
DMN_FILES = sorted(PROCESSES.glob("*.dmn"))


def _doc(path: Path):
    return etree.parse(str(path))


def _flow_nodes(container):
    """All flow nodes in a process or (recursively) in its embedded subprocesses."""
    nodes = []
    for child in container:
        if not isinstance(child.tag, str) or not child.tag.startswith(BPMN):
            continue
        local = etree.QName(child).localname
        if local in NOT_FLOW_NODES:
            continue
        nodes.append(child)
        if local in ("subProcess", "transaction", "adHocSubProcess"):
            nodes.extend(_flow_nodes(child))
    return nodes


def test_expected_files_are_shipped():
    names = {p.name for p in BPMN_FILES}
    assert set(EXPECTED_PROCESSES) <= names
    assert "complaint_severity.dmn" in {p.name for p in DMN_FILES}
    for name, pid in EXPECTED_PROCESSES.items():
        processes = _doc(PROCESSES / name).findall("bpmn:process", NS)
        assert [p.get("id") for p in processes] == [pid]
        assert processes[0].get("isExecutable") == "true"


@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_di_is_complete(path):
    doc = _doc(path)
    shapes = {}
    for shape in doc.iterfind(".//bpmndi:BPMNShape", NS):
        bounds = shape.find("dc:Bounds", NS)
        assert bounds is not None, f"shape {shape.get('id')} has no dc:Bounds"
        for attr in ("x", "y", "width", "height"):
            float(bounds.get(attr))
        assert float(bounds.get("width")) > 0 and float(bounds.get("height")) > 0
        shapes[shape.get("bpmnElement")] = shape
    edges = {}
    for edge in doc.iterfind(".//bpmndi:BPMNEdge", NS):
        points = edge.findall("di:waypoint", NS)
        assert len(points) >= 2, f"edge {edge.get('id')} has fewer than two waypoints"
        for p in points:
            float(p.get("x")), float(p.get("y"))
        edges[edge.get("bpmnElement")] = edge

    planes = {p.get("bpmnElement") for p in doc.iterfind(".//bpmndi:BPMNPlane", NS)}
    collaborations = doc.findall("bpmn:collaboration", NS)
    for process in doc.iterfind("bpmn:process", NS):
        if not collaborations:
            assert process.get("id") in planes, f"no BPMNPlane for process {process.get('id')}"
        missing_shapes = [n.get("id") for n in _flow_nodes(process) if n.get("id") not in shapes]
        assert not missing_shapes, f"flow nodes without BPMNShape: {missing_shapes}"
        lanes = [lane.get("id") for lane in process.iterfind(".//bpmn:lane", NS)]
        assert not [lane for lane in lanes if lane not in shapes], "lanes without BPMNShape"
        flows = [f.get("id") for f in process.iterfind(".//bpmn:sequenceFlow", NS)]
        missing_edges = [f for f in flows if f not in edges]
        assert not missing_edges, f"sequence flows without BPMNEdge: {missing_edges}"
    for collaboration in collaborations:
        assert collaboration.get("id") in planes
        for participant in collaboration.iterfind("bpmn:participant", NS):
            assert participant.get("id") in shapes, f"participant {participant.get('id')} has no shape"

    # DI must not point at elements that do not exist
    all_ids = {el.get("id") for el in doc.iter() if isinstance(el.tag, str) and el.get("id")}
    dangling = [ref for ref in list(shapes) + list(edges) if ref not in all_ids]
    assert not dangling, f"DI refers to unknown elements: {dangling}"


@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_steps_are_documented_assigned_and_have_valid_forms(path):
    doc = _doc(path)
    for process in doc.iterfind("bpmn:process", NS):
        for node in _flow_nodes(process):
            local = etree.QName(node).localname
            if local.endswith("Gateway"):
                continue
            documentation = node.find("bpmn:documentation", NS)
            assert documentation is not None and documentation.text and documentation.text.strip(), \
                f"{node.get('id')} has no documentation"
            assert node.get("name"), f"{node.get('id')} has no name"
        for task in process.iterfind(".//bpmn:userTask", NS):
            camunda = f"{{{NS['camunda']}}}"
            assert task.get(camunda + "assignee") or task.get(camunda + "candidateGroups") \
                or task.get(camunda + "candidateUsers"), f"user task {task.get('id')} is not assigned"
            fields = task.findall(".//camunda:formField", NS)
            assert fields, f"user task {task.get('id')} has no form"
        for field in process.iterfind(".//camunda:formField", NS):
            assert field.get("type") in FORM_TYPES, f"{field.get('id')}: type {field.get('type')}"
            assert field.get("label"), f"{field.get('id')} has no label"
            if field.get("type") == "enum":
                assert field.findall("camunda:value", NS), f"enum {field.get('id')} has no values"
                if field.get("defaultValue"):
                    assert field.get("defaultValue") in [v.get("id") for v in field.findall("camunda:value", NS)]
            for constraint in field.iterfind(".//camunda:constraint", NS):
                assert constraint.get("name") in CONSTRAINTS
            if field.get("type") == "boolean" and field.get("defaultValue") is not None:
                assert field.get("defaultValue") in ("true", "false")
        for gateway in process.iterfind(".//bpmn:exclusiveGateway", NS):
            outgoing = [f for f in process.iterfind(".//bpmn:sequenceFlow", NS)
                        if f.get("sourceRef") == gateway.get("id")]
            if len(outgoing) < 2:
                continue
            unconditioned = [f.get("id") for f in outgoing if f.find("bpmn:conditionExpression", NS) is None]
            assert gateway.get("default"), f"gateway {gateway.get('id')} has no default flow"
            assert unconditioned == [gateway.get("default")], f"gateway {gateway.get('id')}"
        for script in process.iterfind(".//bpmn:scriptTask", NS):
            assert script.get("scriptFormat") == "python"
            text = script.find("bpmn:script", NS).text
            compile(text, script.get("id"), "exec")
            for forbidden in ("import ", "while ", "def ", "class ", "__"):
                assert forbidden not in text, f"{script.get('id')} uses {forbidden!r}"
        for timer in process.iterfind(".//bpmn:timerEventDefinition", NS):
            assert timer.find("bpmn:timeDuration", NS) is not None or timer.find("bpmn:timeDate", NS) is not None \
                or timer.find("bpmn:timeCycle", NS) is not None


@pytest.mark.parametrize("path", DMN_FILES, ids=lambda p: p.name)
def test_dmn_has_one_decision_with_supported_hit_policy(path):
    doc = _doc(path)
    decisions = doc.findall("dmn:decision", NS)
    assert len(decisions) == 1
    table = decisions[0].find("dmn:decisionTable", NS)
    assert table.get("hitPolicy", "UNIQUE") in ("UNIQUE", "FIRST")
    inputs = table.findall("dmn:input", NS)
    for rule in table.findall("dmn:rule", NS):
        assert len(rule.findall("dmn:inputEntry", NS)) == len(inputs)
    assert decisions[0].get("id") == path.stem


def test_everything_parses_with_the_camunda_parser():
    """...validating every file against the BPMN 2.0 / DMN 1.3 XML schemas on the way."""
    parser_module = pytest.importorskip("SpiffWorkflow.camunda.parser.CamundaParser")
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator

    parser = parser_module.CamundaParser(validator=BpmnValidator())
    for path in BPMN_FILES:
        parser.add_bpmn_file(str(path))
    for path in DMN_FILES:
        parser.add_dmn_file(str(path))
    for pid in EXPECTED_PROCESSES.values():
        spec = parser.get_spec(pid)
        assert spec.name == pid
        parser.get_subprocess_specs(pid)
    assert "rca_and_corrective_action" in parser.get_subprocess_specs("complaint_to_improvement")
    assert "rca_and_corrective_action" in parser.get_subprocess_specs("supplier_nonconformity")


def test_readme_documents_every_data_name():
    """Each form field and each name a script assigns is listed in processes/README.md."""
    import ast
    import re

    readme = (PROCESSES / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)", readme))
    documented |= {f"action_{i}_{part}" for i in range(1, 5) for part in ("what", "owner", "due")}
    documented |= {f"why_{i}" for i in range(1, 6)}
    missing = {}
    for path in BPMN_FILES:
        doc = _doc(path)
        names = {f.get("id") for f in doc.iterfind(".//camunda:formField", NS)}
        for script in doc.iterfind(".//bpmn:script", NS):
            for node in ast.walk(ast.parse(script.text)):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
        undocumented = sorted(n for n in names if n not in documented)
        if undocumented:
            missing[path.name] = undocumented
    assert not missing, f"data names missing from processes/README.md: {missing}"


@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_diagram_is_readable(path):
    """Shapes do not overlap, flows start and end on their own shapes and pass through no other."""
    doc = _doc(path)
    elements = {el.get("id"): el for el in doc.iter() if isinstance(el.tag, str) and el.get("id")}
    boxes = {}
    for shape in doc.iterfind(".//bpmndi:BPMNShape", NS):
        b = shape.find("dc:Bounds", NS)
        boxes[shape.get("bpmnElement")] = tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))
    containers = {k for k, el in ((k, elements[k]) for k in boxes)
                  if etree.QName(el).localname in ("participant", "lane", "subProcess")}
    nodes = {k: v for k, v in boxes.items() if k not in containers}
    keys = sorted(nodes)
    for i, a in enumerate(keys):
        ax, ay, aw, ah = nodes[a]
        for b in keys[i + 1:]:
            bx, by, bw, bh = nodes[b]
            assert not (ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah), f"{a} overlaps {b}"

    def near(point, box, tolerance=2.0):
        x, y, w, h = box
        return x - tolerance <= point[0] <= x + w + tolerance and y - tolerance <= point[1] <= y + h + tolerance

    for edge in doc.iterfind(".//bpmndi:BPMNEdge", NS):
        flow = elements[edge.get("bpmnElement")]
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        points = [(float(p.get("x")), float(p.get("y"))) for p in edge.findall("di:waypoint", NS)]
        assert near(points[0], nodes[source]), f"{flow.get('id')} does not start at {source}"
        assert near(points[-1], nodes[target]), f"{flow.get('id')} does not end at {target}"
        for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
            for other, (x, y, w, h) in nodes.items():
                if other in (source, target):
                    continue
                crosses = (min(x1, x2) < x + w - 1 and max(x1, x2) > x + 1
                           and min(y1, y2) < y + h - 1 and max(y1, y2) > y + 1)
                assert not crosses, f"{flow.get('id')} runs through {other}"
