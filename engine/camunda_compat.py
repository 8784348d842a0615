"""Rewrites of a parsed model so the checks and SpiffWorkflow read what Camunda 7 would run.

They work on the parsed tree only; the stored XML (what a lead downloads and edits) stays the
user's file, and every element keeps its id and source line, so problems and diagrams still point
at what the user drew.

- `normalise_namespaces`: Operaton (the open-source continuation of Camunda 7) writes
  `http://operaton.org/schema/1.0/bpmn` with `operaton:` attributes and elements; they mean exactly
  their `camunda:` twins, so they are renamed once, before anything else reads the model. Camunda 7
  also still reads the Activiti namespace its older examples bind `camunda:` to
  (`http://activiti.org/bpmn`), so that one is renamed the same way.
- `drop_data_stores`: data stores mean nothing at run time (Camunda ignores them too).
- `resolve_links`: SpiffWorkflow 3.2 has no link events. A link throw event named X continues at the
  link catch event named X in the same scope (process or subprocess), which is what a sequence flow
  from the throw to the catch does; both events then pass through as none events.
"""

from __future__ import annotations

from lxml import etree

from engine.bpmn_parser import CAMUNDA
from engine.xml_safety import parse_stored

OPERATON_NS = "http://operaton.org/schema/1.0/bpmn"
ACTIVITI_NS = "http://activiti.org/bpmn"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_TWINS = tuple("{" + ns + "}" for ns in (OPERATON_NS, ACTIVITI_NS))
_B = "{" + BPMN_NS + "}"
_SCOPES = ("process", "subProcess", "transaction", "adHocSubProcess")


def normalise_namespaces(root: etree._Element) -> etree._Element:
    """Rename `operaton:` (and Activiti's) elements and attributes to `camunda:` in place; returns `root`."""
    if not {OPERATON_NS, ACTIVITI_NS} & _namespaces_used(root):
        return root
    for el in root.iter(etree.Element):
        for twin in _TWINS:
            if isinstance(el.tag, str) and el.tag.startswith(twin):
                el.tag = CAMUNDA + el.tag[len(twin):]
            for name in [a for a in el.attrib if a.startswith(twin)]:
                value = el.attrib.pop(name)
                el.set(CAMUNDA + name[len(twin):], value)
    return root


def _namespaces_used(root: etree._Element) -> set[str]:
    found = set(root.nsmap.values())
    for el in root.iter(etree.Element):
        found.update(el.nsmap.values())
    return found


def _link_name(event: etree._Element) -> str | None:
    link = event.find(_B + "linkEventDefinition")
    return (link.get("name") or "").strip() if link is not None else None


def resolve_links(root: etree._Element) -> None:
    """Replace each matched link throw/catch pair by a sequence flow, in place (see the module doc).

    Unmatched links are left alone: the deploy check (engine.definition_checks) refuses them."""
    for scope in root.iter(*(_B + s for s in _SCOPES)):
        catches = {}
        for catch in scope.iterchildren(_B + "intermediateCatchEvent"):
            name = _link_name(catch)
            if name:
                catches.setdefault(name, catch)
        targets: set[etree._Element] = set()
        for throw in list(scope.iterchildren(_B + "intermediateThrowEvent")):
            name = _link_name(throw)
            catch = catches.get(name) if name else None
            if catch is None:
                continue
            throw.remove(throw.find(_B + "linkEventDefinition"))
            flow_id = f"{throw.get('id')}_link_{catch.get('id')}"
            flow = etree.SubElement(scope, _B + "sequenceFlow", id=flow_id, sourceRef=throw.get("id"),
                                    targetRef=catch.get("id"))
            flow.sourceline = throw.sourceline
            _add_ref(throw, "outgoing", flow_id)
            _add_ref(catch, "incoming", flow_id)
            targets.add(catch)
        for catch in targets:
            catch.remove(catch.find(_B + "linkEventDefinition"))
            catch.tag = _B + "intermediateThrowEvent"  # a none throw event: passes straight through


def drop_data_stores(root: etree._Element) -> None:
    """Remove data stores and the associations to them, in place: Camunda ignores them at run time
    (deploy warns about them), while SpiffWorkflow would look for a data store implementation."""
    stores = {el.get("id") for el in root.iter(_B + "dataStoreReference", _B + "dataStore")}
    for assoc in list(root.iter(_B + "dataInputAssociation", _B + "dataOutputAssociation")):
        refs = {(ref.text or "").strip() for ref in assoc.iterchildren(_B + "sourceRef", _B + "targetRef")}
        if refs & stores:
            assoc.getparent().remove(assoc)
    for el in list(root.iter(_B + "dataStoreReference", _B + "dataStore")):
        el.getparent().remove(el)


def _add_ref(event: etree._Element, kind: str, flow_id: str) -> None:
    ref = etree.Element(_B + kind)
    ref.text = flow_id
    # incoming/outgoing come right after extensionElements/documentation, before event definitions
    position = 0
    for i, child in enumerate(event):
        if etree.QName(child).localname in ("documentation", "extensionElements", "incoming", "outgoing"):
            position = i + 1
    event.insert(position, ref)


def parse_stored_model(xml: str) -> etree._Element:
    """A deployed definition's XML, parsed and normalised as at deploy."""
    return normalise_namespaces(parse_stored(xml))
