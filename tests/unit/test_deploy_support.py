"""Builders and helpers shared by the deployment tests (no tests here)."""

from __future__ import annotations

import re

from engine.errors import Problem

BPMN_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'id="Defs" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)
DMN_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="drd" name="DRD" '
    'namespace="http://camunda.org/schema/1.0/dmn">\n'
)
_ID = re.compile(r'\bid="([^"]+)"')


def process_xml(pid: str, *nodes: str, executable: str | None = "true", extra: str = "") -> str:
    """A process start -> nodes... -> end, one element per line, flows generated from the node ids."""
    attr = f' isExecutable="{executable}"' if executable is not None else ""
    ids = ["start"] + [_ID.search(node).group(1) for node in nodes] + ["end"]
    lines = [f'  <bpmn:process id="{pid}" name="{pid} process"{attr}>',
             '    <bpmn:startEvent id="start" />']
    lines += [f"    {node}" for node in nodes]
    lines.append('    <bpmn:endEvent id="end" />')
    for i, (src, dst) in enumerate(zip(ids, ids[1:], strict=False)):
        lines.append(f'    <bpmn:sequenceFlow id="f{i}" sourceRef="{src}" targetRef="{dst}" />')
    if extra:
        lines.append(extra)
    lines.append("  </bpmn:process>")
    return "\n".join(lines) + "\n"


def bpmn(*processes: str, outside: str = "") -> bytes:
    return (BPMN_HEAD + "".join(processes) + outside + "</bpmn:definitions>\n").encode()


def linear(pid: str, *nodes: str, executable: str | None = "true") -> bytes:
    return bpmn(process_xml(pid, *nodes, executable=executable))


def user_task(tid: str, group: str = "reviewers", **attrs: str) -> str:
    extra = "".join(f' camunda:{k}="{v}"' for k, v in attrs.items())
    groups = f' camunda:candidateGroups="{group}"' if group else ""
    return f'<bpmn:userTask id="{tid}" name="{tid} task"{groups}{extra} />'


def decision_table(did: str, input_expr: str, output_name: str, rules: list[tuple[str, str]],
                   name: str | None = None) -> str:
    out = [f'  <decision id="{did}" name="{name or did}">',
           f'    <decisionTable id="{did}_table" hitPolicy="FIRST">',
           f'      <input id="{did}_in"><inputExpression id="{did}_in_expr" typeRef="string">'
           f"<text>{input_expr}</text></inputExpression></input>",
           f'      <output id="{did}_out" name="{output_name}" typeRef="string" />']
    for i, (test, result) in enumerate(rules):
        out.append(f'      <rule id="{did}_r{i}"><inputEntry id="{did}_r{i}_in"><text>{test}</text></inputEntry>'
                   f'<outputEntry id="{did}_r{i}_out"><text>{result}</text></outputEntry></rule>')
    out += ["    </decisionTable>", "  </decision>"]
    return "\n".join(out) + "\n"


def dmn(*decisions: str) -> bytes:
    return (DMN_HEAD + "".join(decisions) + "</definitions>\n").encode()


def line_of(content: bytes | str, marker: str, nth: int = 0) -> int:
    """1-based line of the nth line containing marker."""
    text = content.decode() if isinstance(content, bytes) else content
    hits = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(hits) > nth, f"{marker!r} not in the document"
    return hits[nth]


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def render(problems: list[Problem]) -> str:
    return "\n".join(map(str, problems))
