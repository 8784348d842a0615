"""Reading a DMN document (DMN 1.1–1.5, any of their namespaces) into plain dataclasses.

Only what evaluation needs is kept: decisions with their logic (decision table, literal
expression, invocation of a business knowledge model), their requirements, input data and
business knowledge models. Each FEEL text keeps its source line so errors can name FILE:LINE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

DMN_NAMESPACES = (
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",       # DMN 1.1
    "http://www.omg.org/spec/DMN/20180521/MODEL/",        # DMN 1.2
    "https://www.omg.org/spec/DMN/20191111/MODEL/",       # DMN 1.3
    "https://www.omg.org/spec/DMN/20211108/MODEL/",       # DMN 1.4
    "https://www.omg.org/spec/DMN/20230324/MODEL/",       # DMN 1.5
)


CAMUNDA_DMN = "{http://camunda.org/schema/1.0/dmn}"


class DmnModelError(ValueError):
    """The document cannot be read as DMN (reported at deploy time with its line)."""

    def __init__(self, message: str, line: int | None = None, element: str = "definitions") -> None:
        super().__init__(message)
        self.line = line
        self.element = element


@dataclass(frozen=True)
class Text:
    """A FEEL text and where it is written."""
    text: str
    line: int | None = None
    element: str = ""
    language: str = ""   # "" is FEEL; "juel"/"python" are run by the sandbox (engine/dmn/languages.py)


@dataclass
class TableInput:
    expression: Text
    label: str = ""
    input_values: Text | None = None
    type_ref: str = ""
    input_variable: str = "cellInput"   # Camunda 7: the name input entries may use for the input value


@dataclass
class TableOutput:
    name: str
    label: str = ""
    output_values: Text | None = None
    default: Text | None = None


@dataclass
class Rule:
    id: str
    index: int
    inputs: list[Text]
    outputs: list[Text]
    line: int | None = None


@dataclass
class DecisionTable:
    hit_policy: str
    aggregation: str | None
    inputs: list[TableInput]
    outputs: list[TableOutput]
    rules: list[Rule]
    line: int | None = None


@dataclass
class LiteralExpression:
    text: Text


@dataclass
class Invocation:
    target: str
    bindings: list[tuple[str, Any]]          # parameter name, boxed expression (or None)


@dataclass
class BoxedContext:
    entries: list[tuple[str | None, Any]]    # an entry without a name is the context's result


@dataclass
class BoxedList:
    items: list[Any]


@dataclass
class Relation:
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class FunctionDefinition:
    parameters: list[str]
    body: Any
    kind: str = "FEEL"


@dataclass
class Conditional:
    condition: Any
    then: Any
    otherwise: Any


@dataclass
class Iteration:
    """DMN 1.5 boxed for / some / every / filter."""
    kind: str
    variable: str
    source: Any
    body: Any


@dataclass
class Decision:
    id: str
    name: str
    logic: Any
    required_decisions: list[str] = field(default_factory=list)
    required_inputs: list[str] = field(default_factory=list)
    required_knowledge: list[str] = field(default_factory=list)
    line: int | None = None


@dataclass
class KnowledgeModel:
    id: str
    name: str
    parameters: list[str]
    logic: Any


@dataclass
class Definitions:
    decisions: dict[str, Decision] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)            # id -> name
    knowledge: dict[str, KnowledgeModel] = field(default_factory=dict)

    def decision(self, key: str) -> Decision | None:
        """By id (Camunda's decisionRef) or, failing that, by name (DMN's own references)."""
        if key in self.decisions:
            return self.decisions[key]
        return next((d for d in self.decisions.values() if d.name == key), None)


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c) == name]


def _child(el: Any, name: str) -> Any:
    found = _children(el, name)
    return found[0] if found else None


def _text(el: Any, element: str) -> Text | None:
    if el is None:
        return None
    text_el = _child(el, "text")
    if text_el is None:
        return None
    language = (el.get("expressionLanguage") or "").strip().lower()
    if "feel" in language:
        language = ""
    return Text((text_el.text or "").strip(), text_el.sourceline, element, language)


def _href(el: Any) -> str:
    return (el.get("href") or "").split("#")[-1]


def _table(el: Any) -> DecisionTable:
    where = el.get("id") or "decisionTable"
    inputs = []
    for i in _children(el, "input"):
        expression = _child(i, "inputExpression")
        inputs.append(TableInput(_text(expression, i.get("id") or where) or Text("", i.sourceline, where),
                                 i.get("label") or "", _text(_child(i, "inputValues"), i.get("id") or where),
                                 (expression.get("typeRef") or "") if expression is not None else "",
                                 i.get(CAMUNDA_DMN + "inputVariable") or "cellInput"))
    outputs = []
    for o in _children(el, "output"):
        outputs.append(TableOutput(o.get("name") or o.get("label") or "", o.get("label") or "",
                                   _text(_child(o, "outputValues"), o.get("id") or where),
                                   _text(_child(o, "defaultOutputEntry"), o.get("id") or where)))
    rules = []
    for index, r in enumerate(_children(el, "rule"), start=1):
        rid = r.get("id") or f"rule {index}"
        rules.append(Rule(rid, index,
                          [_text(e, rid) or Text("-", e.sourceline, rid) for e in _children(r, "inputEntry")],
                          [_text(e, rid) or Text("null", e.sourceline, rid) for e in _children(r, "outputEntry")],
                          r.sourceline))
    hit = (el.get("hitPolicy") or "UNIQUE").upper().replace(" ", "_")
    return DecisionTable(hit, (el.get("aggregation") or "").upper() or None, inputs, outputs, rules, el.sourceline)


_EXPRESSIONS = {"decisionTable", "literalExpression", "invocation", "context", "list", "relation",
                "functionDefinition", "conditional", "for", "some", "every", "filter"}


def _logic(el: Any) -> Any:
    """The boxed expression held by `el` (a decision, a context entry, a binding...), or None."""
    for c in el:
        if _local(c) in _EXPRESSIONS:
            return _expression(c, el.get("id") or _local(el))
    return None


def _inner(el: Any, name: str, where: str) -> Any:
    holder = _child(el, name)
    return _logic(holder) if holder is not None else None


def _expression(c: Any, where: str) -> Any:
    kind = _local(c)
    if kind == "decisionTable":
        return _table(c)
    if kind == "literalExpression":
        return LiteralExpression(_text(c, c.get("id") or where) or Text("null", c.sourceline, where))
    if kind == "invocation":
        target = _logic(c)
        callee = target.text.text if isinstance(target, LiteralExpression) else ""
        bindings = [(_child(b, "parameter").get("name") if _child(b, "parameter") is not None else "", _logic(b))
                    for b in _children(c, "binding")]
        return Invocation(callee, bindings)
    if kind == "context":
        entries = []
        for entry in _children(c, "contextEntry"):
            variable = _child(entry, "variable")
            entries.append((variable.get("name") if variable is not None else None, _logic(entry)))
        return BoxedContext(entries)
    if kind == "list":
        return BoxedList([_expression(item, where) for item in c if _local(item) in _EXPRESSIONS])
    if kind == "relation":
        columns = [col.get("name") or "" for col in _children(c, "column")]
        rows = [[_expression(cell, where) for cell in row if _local(cell) in _EXPRESSIONS]
                for row in _children(c, "row")]
        return Relation(columns, rows)
    if kind == "functionDefinition":
        params = [p.get("name") or "" for p in _children(c, "formalParameter")]
        return FunctionDefinition(params, _logic(c), c.get("kind") or "FEEL")
    if kind == "conditional":
        return Conditional(_inner(c, "if", where), _inner(c, "then", where), _inner(c, "else", where))
    if kind in ("for", "some", "every"):
        body = "return" if kind == "for" else "satisfies"
        return Iteration(kind, c.get("iteratorVariable") or "", _inner(c, "in", where), _inner(c, body, where))
    if kind == "filter":
        return Iteration("filter", "item", _inner(c, "in", where), _inner(c, "match", where))
    return None


def read_definitions(root: Any) -> Definitions:
    """Read a parsed DMN `definitions` element."""
    if _local(root) != "definitions" or etree.QName(root).namespace not in DMN_NAMESPACES:
        raise DmnModelError("not a DMN document (expected definitions in a DMN 1.1-1.5 namespace)",
                            getattr(root, "sourceline", None))
    out = Definitions()
    for el in root:
        kind = _local(el)
        if kind == "inputData":
            out.inputs[el.get("id") or ""] = el.get("name") or ""
        elif kind == "businessKnowledgeModel":
            logic_el = _child(el, "encapsulatedLogic")
            params = [p.get("name") or "" for p in _children(logic_el, "formalParameter")] if logic_el is not None else []
            out.knowledge[el.get("id") or ""] = KnowledgeModel(el.get("id") or "", el.get("name") or "", params,
                                                               _logic(logic_el) if logic_el is not None else None)
        elif kind == "decision":
            decision = Decision(el.get("id") or "", el.get("name") or el.get("id") or "", _logic(el), line=el.sourceline)
            for req in _children(el, "informationRequirement"):
                for ref in req:
                    if _local(ref) == "requiredDecision":
                        decision.required_decisions.append(_href(ref))
                    elif _local(ref) == "requiredInput":
                        decision.required_inputs.append(_href(ref))
            for req in _children(el, "knowledgeRequirement"):
                for ref in req:
                    if _local(ref) == "requiredKnowledge":
                        decision.required_knowledge.append(_href(ref))
            out.decisions[decision.id] = decision
    return out


def parse_definitions(xml: bytes | str) -> Definitions:
    """Read DMN text (already checked by engine/xml_safety.py on deploy; parsed without entities here)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    data = xml.encode() if isinstance(xml, str) else xml
    return read_definitions(etree.fromstring(data, parser))
