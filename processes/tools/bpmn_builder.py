"""Small helper that writes Camunda-flavoured BPMN 2.0 with complete BPMN DI.

Processes are described in Python (see ``build_processes.py``): every flow node gets a
grid position (column, row) and the builder turns that into BPMNShape bounds and
orthogonal BPMNEdge waypoints, so the files open tidily in Camunda Modeler.

Only the generated ``.bpmn`` files are read by the engine; this module is a
maintenance tool.  Run ``python processes/tools/build_processes.py`` after editing.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MODELER = "http://camunda.org/schema/modeler/1.0"

NSMAP = {
    "bpmn": BPMN,
    "bpmndi": BPMNDI,
    "dc": DC,
    "di": DI,
    "camunda": CAMUNDA,
    "xsi": XSI,
    "modeler": MODELER,
}

# Layout grid
COL_WIDTH = 160
ROW_HEIGHT = 130
ORIGIN_X = 180
ORIGIN_Y = 220

SIZES = {
    "startEvent": (36, 36),
    "endEvent": (36, 36),
    "intermediateCatchEvent": (36, 36),
    "exclusiveGateway": (50, 50),
    "parallelGateway": (50, 50),
}
TASK_SIZE = (100, 80)


def b(tag: str) -> str:
    return f"{{{BPMN}}}{tag}"


def c(tag: str) -> str:
    return f"{{{CAMUNDA}}}{tag}"


@dataclass
class Field:
    """A camunda:formField."""

    id: str
    label: str
    type: str = "string"
    required: bool = False
    default: str | None = None
    values: list[tuple[str, str]] = field(default_factory=list)
    min: int | None = None
    max: int | None = None
    minlength: int | None = None
    maxlength: int | None = None


def enum(id: str, label: str, values: list[tuple[str, str]], **kw) -> Field:
    return Field(id, label, "enum", values=values, **kw)


@dataclass
class Node:
    id: str
    tag: str
    name: str
    col: float
    row: float
    doc: str = ""
    attrs: dict = field(default_factory=dict)
    form: list[Field] = field(default_factory=list)
    script: str | None = None
    timer: str | None = None
    multi: tuple[str, str] | None = None  # (collection, elementVariable)
    call: str | None = None
    default: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return SIZES.get(self.tag, TASK_SIZE)

    @property
    def center(self) -> tuple[float, float]:
        return ORIGIN_X + self.col * COL_WIDTH, ORIGIN_Y + self.row * ROW_HEIGHT

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        (cx, cy), (w, h) = self.center, self.size
        return cx - w / 2, cy - h / 2, w, h

    @property
    def is_gateway(self) -> bool:
        return self.tag.endswith("Gateway")


@dataclass
class Flow:
    id: str
    source: str
    target: str
    name: str | None = None
    condition: str | None = None
    waypoints: list[tuple[float, float]] | None = None
    below: bool = True  # for backward flows: route under (True) or over the nodes


class Process:
    def __init__(self, id: str, name: str, doc: str, version_tag: str = "1"):
        self.id, self.name, self.doc, self.version_tag = id, name, doc, version_tag
        self.nodes: dict[str, Node] = {}
        self.flows: list[Flow] = []

    # ---- nodes -------------------------------------------------------------------------
    def _add(self, node: Node) -> Node:
        assert node.id not in self.nodes, node.id
        self.nodes[node.id] = node
        return node

    def start(self, id, name, at, doc, form=(), initiator=None):
        attrs = {c("initiator"): initiator} if initiator else {}
        return self._add(Node(id, "startEvent", name, *at, doc=doc, form=list(form), attrs=attrs))

    def end(self, id, name, at, doc):
        return self._add(Node(id, "endEvent", name, *at, doc=doc))

    def user(self, id, name, at, doc, form, groups=None, assignee=None, due=None, multi=None):
        attrs = {}
        if assignee:
            attrs[c("assignee")] = assignee
        if groups:
            attrs[c("candidateGroups")] = groups
        if due:
            attrs[c("dueDate")] = due
        return self._add(Node(id, "userTask", name, *at, doc=doc, form=list(form), attrs=attrs, multi=multi))

    def script(self, id, name, at, doc, script):
        attrs = {"scriptFormat": "python"}
        return self._add(Node(id, "scriptTask", name, *at, doc=doc, attrs=attrs, script=script))

    def rule(self, id, name, at, doc, decision):
        return self._add(Node(id, "businessRuleTask", name, *at, doc=doc, attrs={c("decisionRef"): decision}))

    def call(self, id, name, at, doc, called):
        return self._add(Node(id, "callActivity", name, *at, doc=doc, call=called,
                              attrs={"calledElement": called}))

    def timer(self, id, name, at, doc, duration):
        return self._add(Node(id, "intermediateCatchEvent", name, *at, doc=doc, timer=duration))

    def xor(self, id, name, at, doc=""):
        return self._add(Node(id, "exclusiveGateway", name, *at, doc=doc))

    def par(self, id, name, at, doc=""):
        return self._add(Node(id, "parallelGateway", name, *at, doc=doc))

    # ---- flows -------------------------------------------------------------------------
    def flow(self, source, target, name=None, condition=None, default=False, id=None, waypoints=None,
             below=True):
        fid = id or f"flow_{source}_to_{target}"
        self.flows.append(Flow(fid, source, target, name, condition, waypoints, below))
        if default:
            self.nodes[source].default = fid
        return fid

    def chain(self, *ids):
        for s, t in zip(ids, ids[1:], strict=False):
            self.flow(s, t)

    # ---- checks ------------------------------------------------------------------------
    def check(self):
        ids = set(self.nodes)
        for f in self.flows:
            assert f.source in ids and f.target in ids, f
        element_ids = ids | {f.id for f in self.flows} | {self.id}
        for n in self.nodes.values():
            for fld in n.form:  # Spiff looks nodes up by any @id, so form fields must not shadow them
                assert fld.id not in element_ids, f"{self.id}: form field {fld.id} clashes with an element id"
        for n in self.nodes.values():
            outgoing = [f for f in self.flows if f.source == n.id]
            incoming = [f for f in self.flows if f.target == n.id]
            if n.tag != "startEvent":
                assert incoming, f"{self.id}: {n.id} has no incoming flow"
            if n.tag != "endEvent":
                assert outgoing, f"{self.id}: {n.id} has no outgoing flow"
            if n.tag == "exclusiveGateway" and len(outgoing) > 1:
                unconditioned = [f for f in outgoing if not f.condition]
                assert n.default and [f.id for f in unconditioned] == [n.default], \
                    f"{self.id}: gateway {n.id} needs exactly one default flow and conditions on the rest"

    # ---- XML ---------------------------------------------------------------------------
    def _process_xml(self, root):
        proc = etree.SubElement(root, b("process"), id=self.id, name=self.name, isExecutable="true")
        proc.set(c("versionTag"), self.version_tag)
        proc.set(c("historyTimeToLive"), "P3650D")
        etree.SubElement(proc, b("documentation")).text = _clean(self.doc)
        for n in self.nodes.values():
            el = etree.SubElement(proc, b(n.tag), id=n.id)
            if n.name:
                el.set("name", n.name)
            for k, v in n.attrs.items():
                el.set(k, v)
            if n.default:
                el.set("default", n.default)
            if n.doc:
                etree.SubElement(el, b("documentation")).text = _clean(n.doc)
            ext = None
            if n.form:
                ext = etree.SubElement(el, b("extensionElements"))
                _form_xml(ext, n.form)
            if n.call:
                ext = ext if ext is not None else etree.SubElement(el, b("extensionElements"))
                etree.SubElement(ext, c("in"), variables="all")
                etree.SubElement(ext, c("out"), variables="all")
            for f in self.flows:
                if f.target == n.id:
                    etree.SubElement(el, b("incoming")).text = f.id
            for f in self.flows:
                if f.source == n.id:
                    etree.SubElement(el, b("outgoing")).text = f.id
            if n.multi:
                mi = etree.SubElement(el, b("multiInstanceLoopCharacteristics"))
                mi.set(c("collection"), n.multi[0])
                mi.set(c("elementVariable"), n.multi[1])
            if n.script is not None:
                etree.SubElement(el, b("script")).text = "\n" + textwrap.dedent(n.script).strip("\n") + "\n"
            if n.timer is not None:
                ted = etree.SubElement(el, b("timerEventDefinition"), id=f"{n.id}_timer")
                td = etree.SubElement(ted, b("timeDuration"))
                td.set(f"{{{XSI}}}type", "bpmn:tFormalExpression")
                td.text = n.timer
        for f in self.flows:
            el = etree.SubElement(proc, b("sequenceFlow"), id=f.id, sourceRef=f.source, targetRef=f.target)
            if f.name:
                el.set("name", f.name)
            if f.condition:
                ce = etree.SubElement(el, b("conditionExpression"))
                ce.set(f"{{{XSI}}}type", "bpmn:tFormalExpression")
                ce.text = f.condition
        return proc

    def _di_xml(self, root):
        diagram = etree.SubElement(root, f"{{{BPMNDI}}}BPMNDiagram", id=f"{self.id}_diagram")
        plane = etree.SubElement(diagram, f"{{{BPMNDI}}}BPMNPlane", id=f"{self.id}_plane",
                                 bpmnElement=self.id)
        for f in self.flows:
            edge = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNEdge", id=f"{f.id}_di", bpmnElement=f.id)
            points = self._route(f)
            for x, y in points:
                etree.SubElement(edge, f"{{{DI}}}waypoint", x=_n(x), y=_n(y))
            if f.name:
                (x1, y1), (x2, y2) = points[0], points[1]
                lx, ly = (x1 + x2) / 2, (y1 + y2) / 2
                _label(edge, lx + 4, ly - 18, 60, 14)
        for n in self.nodes.values():
            attrs = {"id": f"{n.id}_di", "bpmnElement": n.id}
            if n.tag == "exclusiveGateway":
                attrs["isMarkerVisible"] = "true"
            shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", **attrs)
            x, y, w, h = n.bounds
            etree.SubElement(shape, f"{{{DC}}}Bounds", x=_n(x), y=_n(y), width=_n(w), height=_n(h))
            if n.is_gateway and n.name:  # above-left, clear of flows leaving at the top/bottom
                _label(shape, x - 95, y - 22, 90, 27)
            elif n.tag in SIZES and n.name:  # events: label below
                _label(shape, x + w / 2 - 45, y + h + 5, 90, 27)

    def _route(self, f: Flow) -> list[tuple[float, float]]:
        s, t = self.nodes[f.source], self.nodes[f.target]
        (sx, sy), (sw, sh) = s.center, s.size
        (tx, ty), (tw, th) = t.center, t.size
        if f.waypoints:
            return list(f.waypoints)
        if t.col > s.col:
            if sy == ty:
                return [(sx + sw / 2, sy), (tx - tw / 2, ty)]
            if s.is_gateway:
                ey = sy + sh / 2 if ty > sy else sy - sh / 2
                return [(sx, ey), (sx, ty), (tx - tw / 2, ty)]
            if t.is_gateway:
                ey = ty - th / 2 if sy < ty else ty + th / 2
                return [(sx + sw / 2, sy), (tx, sy), (tx, ey)]
            mx = (sx + sw / 2 + tx - tw / 2) / 2
            return [(sx + sw / 2, sy), (mx, sy), (mx, ty), (tx - tw / 2, ty)]
        # backward flow: go round below (or above) both nodes
        if f.below:
            y = max(sy + sh / 2, ty + th / 2) + 40
            return [(sx, sy + sh / 2), (sx, y), (tx, y), (tx, ty + th / 2)]
        y = min(sy - sh / 2, ty - th / 2) - 40
        return [(sx, sy - sh / 2), (sx, y), (tx, y), (tx, ty - th / 2)]

    def write(self, path):
        self.check()
        root = etree.Element(b("definitions"), nsmap=NSMAP)
        root.set("id", f"{self.id}_definitions")
        root.set("targetNamespace", "http://pdcaflow.example/processes")
        root.set("exporter", "PDCA Flow process builder")
        root.set("exporterVersion", "1.0")
        root.set(f"{{{MODELER}}}executionPlatform", "Camunda Platform")
        root.set(f"{{{MODELER}}}executionPlatformVersion", "7.20.0")
        self._process_xml(root)
        self._di_xml(root)
        etree.ElementTree(root).write(str(path), pretty_print=True, xml_declaration=True, encoding="UTF-8")


def _form_xml(ext, fields: list[Field]):
    fd = etree.SubElement(ext, c("formData"))
    for f in fields:
        ff = etree.SubElement(fd, c("formField"), id=f.id, label=f.label, type=f.type)
        if f.default is not None:
            ff.set("defaultValue", f.default)
        constraints = []
        if f.required:
            constraints.append(("required", None))
        for name in ("min", "max", "minlength", "maxlength"):
            if getattr(f, name) is not None:
                constraints.append((name, str(getattr(f, name))))
        if constraints:
            val = etree.SubElement(ff, c("validation"))
            for name, config in constraints:
                con = etree.SubElement(val, c("constraint"), name=name)
                if config is not None:
                    con.set("config", config)
        for vid, vname in f.values:
            etree.SubElement(ff, c("value"), id=vid, name=vname)


def _label(parent, x, y, w, h):
    label = etree.SubElement(parent, f"{{{BPMNDI}}}BPMNLabel")
    etree.SubElement(label, f"{{{DC}}}Bounds", x=_n(x), y=_n(y), width=_n(w), height=_n(h))


def _clean(text: str) -> str:
    return " ".join(textwrap.dedent(text).split())


def _n(v: float) -> str:
    return str(int(round(v)))
