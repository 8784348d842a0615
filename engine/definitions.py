"""Deploying BPMN/DMN files: validate, version, store, and cache the parsed specs.

Rules:
- a file with any problem deploys nothing; every problem is reported as FILE:LINE: ELEMENT: message;
- each executable process (BPMN) and each decision (DMN) is a definition key with versions 1..N;
- a version's hash covers its file and everything it was built with (decisions, called processes),
  so redeploying the same files is a no-op, and changing a decision re-versions the processes
  that use it (a quality lead edits the rules without touching the BPMN);
- running instances keep the version they started on.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import clock
from engine.bpmn_parser import CAMUNDA, PdcaParser
from engine.camunda_compat import drop_data_stores, normalise_namespaces, parse_stored_model, resolve_links
from engine.cases import FALLBACK, CaseDeclaration, declared_case
from engine.definition_checks import BPMN_NS, check_bpmn, check_dmn, describe, local
from engine.dmn.model import DMN_NAMESPACES as DMN_MODEL_NAMESPACES
from engine.errors import DeploymentError, NotFoundError, Problem
from engine.forms import CAMUNDA_NS, form_data_fields
from engine.runtime.spiff import dump_specs, load_specs
from engine.xml_safety import DEFAULT_MAX_BYTES, parse_xml
from storage.models import ProcessDefinition
from storage.queries import lock_deployments

DMN_NAMESPACES = DMN_MODEL_NAMESPACES  # DMN 1.1 to 1.5


@dataclass
class SourceFile:
    name: str
    content: bytes
    root: Any = None
    kind: str = ""
    problems: list[Problem] = field(default_factory=list)  # errors: the file deploys nothing
    warnings: list[Problem] = field(default_factory=list)  # ignored or defaulted; the file deploys

    @property
    def keys(self) -> list[str]:
        if self.kind == "dmn":
            return [el.get("id") for el in self.root if local(el.tag) == "decision" and el.get("id")]
        return [p.get("id") for p in self.root.iter(f"{{{BPMN_NS}}}process")
                if p.get("isExecutable", "false").lower() == "true" and p.get("id")]


@dataclass(frozen=True)
class DeployResult:
    key: str
    version: int
    unchanged: bool
    kind: str = "bpmn"
    reason: str = ""
    file: str = ""

    def __str__(self) -> str:
        text = f"{self.key} v{self.version}"
        if self.unchanged:
            text += " unchanged"
        elif self.reason:
            text += f" ({self.reason})"
        return text


@dataclass
class DeployReport:
    results: list[DeployResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def warnings_of(self, file: str) -> list[Problem]:
        return [w for w in self.warnings if w.file == file]

    @property
    def ok(self) -> bool:
        return not self.problems


def collect_files(paths: Iterable[Path | str]) -> list[Path]:
    """Expand folders into their .bpmn/.dmn files, sorted so deployment order is stable."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in (".bpmn", ".dmn")))
        else:
            files.append(path)
    return files


def read_source(name: str, content: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> SourceFile:
    source = SourceFile(name, content)
    root, problems = parse_xml(content, name, max_bytes)
    if root is None:
        source.problems = problems
        return source
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        # a file in another encoding (its XML declaration says which, e.g. ISO-8859-1) is stored, as
        # text, re-encoded as UTF-8 with a declaration that says so
        source.content = etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)
    # Operaton's namespace is read as Camunda's, once, before the checks and SpiffWorkflow see it;
    # `content` (what is stored and downloaded) stays the user's file.
    root = normalise_namespaces(root)
    source.root = root
    namespace = etree.QName(root.tag).namespace
    if namespace in DMN_NAMESPACES:
        source.kind = "dmn"
        found = check_dmn(root, name)
    else:
        source.kind = "bpmn"
        found = check_bpmn(root, name)
    source.problems = [p for p in found if not p.is_warning]
    source.warnings = [p for p in found if p.is_warning]
    return source


def _required_decisions(root: etree._Element, decision_id: str) -> set[str]:
    """The decision and every decision it requires, directly or through others."""
    by_id = {el.get("id"): el for el in root if local(el.tag) == "decision"}
    found: set[str] = set()
    pending = [decision_id]
    while pending:
        current = pending.pop()
        if current in found or current not in by_id:
            continue
        found.add(current)
        pending.extend((ref.get("href") or "").split("#")[-1] for ref in by_id[current].iter(etree.Element)
                       if local(ref.tag) == "requiredDecision")
    return found


def _split_decisions(source: SourceFile) -> dict[str, etree._Element]:
    """One document per decision: the decision and what it requires (so its version follows only
    the rules it uses), business knowledge models and input data, without the diagram."""
    out: dict[str, etree._Element] = {}
    for decision_id in source.keys:
        keep = _required_decisions(source.root, decision_id)
        doc = copy.deepcopy(source.root)
        for el in list(doc):
            if local(el.tag) == "decision" and el.get("id") not in keep:
                doc.remove(el)
            elif local(el.tag) == "DMNDI":
                doc.remove(el)
        out[decision_id] = doc
    return out


def _normalise_for_spiff(root: etree._Element) -> etree._Element:
    """Camunda writes `camunda:collection="${items}"`; SpiffWorkflow wants the variable name.
    Link events become the sequence flows they stand for (SpiffWorkflow 3.2 has no link events);
    data stores, ignored at run time, are left out (engine/camunda_compat.py)."""
    root = copy.deepcopy(root)
    resolve_links(root)
    drop_data_stores(root)
    for el in root.iter(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics"):
        for attr in ("collection", "elementVariable"):
            value = el.get(CAMUNDA + attr)
            if value and value.strip().startswith("${") and value.strip().endswith("}"):
                el.set(CAMUNDA + attr, value.strip()[2:-1].strip())
    return root


def _sha(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def _line_of(source: SourceFile | None, element_id: str | None) -> int | None:
    if source is None or source.root is None or not element_id:
        return None
    for el in source.root.iter(etree.Element):
        if el.get("id") == element_id:
            return el.sourceline
    return None


def _problem_from_spiff(exc: Exception, sources: dict[str, SourceFile], default_file: str) -> Problem:
    file_name = getattr(exc, "file_name", "") or default_file
    source = sources.get(file_name) or sources.get(default_file)
    element_id = getattr(exc, "id", "") or ""
    tag = getattr(exc, "tag", "") or ""
    element = f"{tag.replace('bpmn:', '')} {element_id}".strip() or "process"
    line = getattr(exc, "line_number", None) or _line_of(source, element_id)
    message = str(exc.args[0]) if exc.args else str(exc)
    return Problem(source.name if source else file_name, line if isinstance(line, int) else None, element, message)


def _unresolved(source: SourceFile, processes: set[str], decisions: set[str]) -> list[Problem]:
    """Call activities and business rule tasks whose target is neither in the batch nor deployed."""
    out = []
    for el in source.root.iter(f"{{{BPMN_NS}}}callActivity", f"{{{BPMN_NS}}}businessRuleTask"):
        if local(el.tag) == "callActivity":
            target, what = el.get("calledElement"), "called process"
            known = processes
        else:
            target, what = el.get(CAMUNDA + "decisionRef"), "decision"
            known = decisions
        if target and target not in known:
            out.append(Problem(source.name, el.sourceline, describe(el),
                               f"{what} '{target}' is not deployed; deploy it first or in the same batch"))
    return out


def start_form_fields(root: etree._Element, key: str) -> list[dict[str, Any]]:
    """The form model of process KEY's start form: the `camunda:formData` of its none start event
    (as in Camunda, timer, message and signal start events carry no start form); [] without one."""
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        if process.get("id") != key:
            continue
        for start in process.iterchildren(f"{{{BPMN_NS}}}startEvent"):
            if any(local(child.tag).endswith("EventDefinition") for child in start):
                continue
            form_data = start.find(f"{{{BPMN_NS}}}extensionElements/{CAMUNDA}formData")
            if form_data is not None:
                return form_data_fields(form_data)
    return []


class DefinitionStore:
    """Deploys definitions and hands out parsed specs and start forms (cached per definition version)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]] = {}
        self._start_forms: dict[int, list[dict[str, Any]]] = {}
        self._cases: dict[int, CaseDeclaration] = {}
        self._lock = threading.Lock()

    # ---- reading
    def specs(self, session: Session, definition_id: int) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
        cached = self._cache.get(definition_id)
        if cached is not None:
            return cached
        raw = session.scalar(select(ProcessDefinition.spec_json).where(ProcessDefinition.id == definition_id))
        if raw is None:
            raise NotFoundError(f"process definition {definition_id} not found")
        specs = load_specs(raw)
        with self._lock:
            self._cache[definition_id] = specs
        return specs

    def start_form(self, session: Session, definition_id: int) -> list[dict[str, Any]]:
        """The start form's fields of a deployed process version, read from its stored XML.

        SpiffWorkflow parses no form on start events, so the serialized spec has none; the XML
        is read once per version (a version never changes). A copy, so callers may change it.
        """
        cached = self._start_forms.get(definition_id)
        if cached is None:
            row = session.execute(select(ProcessDefinition.key, ProcessDefinition.xml)
                                  .where(ProcessDefinition.id == definition_id)).first()
            if row is None:
                raise NotFoundError(f"process definition {definition_id} not found")
            cached = start_form_fields(parse_stored_model(row.xml), row.key)
            with self._lock:
                self._start_forms[definition_id] = cached
        return copy.deepcopy(cached)

    def case_declaration(self, session: Session, definition_id: int) -> CaseDeclaration:
        """What a deployed process version declares as its case title and summary (engine/cases.py),
        read from its stored XML once per version."""
        cached = self._cases.get(definition_id)
        if cached is None:
            row = session.execute(select(ProcessDefinition.key, ProcessDefinition.xml)
                                  .where(ProcessDefinition.id == definition_id)).first()
            cached = declared_case(parse_stored_model(row.xml), row.key, BPMN_NS, CAMUNDA_NS) if row else FALLBACK
            with self._lock:
                self._cases[definition_id] = cached
        return cached

    @staticmethod
    def xml_of(session: Session, definition_id: int) -> str:
        xml = session.scalar(select(ProcessDefinition.xml).where(ProcessDefinition.id == definition_id))
        if xml is None:
            raise NotFoundError(f"process definition {definition_id} not found")
        return xml

    @staticmethod
    def latest(session: Session, key: str, kind: str = "bpmn") -> ProcessDefinition | None:
        return session.scalars(
            select(ProcessDefinition).where(ProcessDefinition.key == key, ProcessDefinition.kind == kind)
            .order_by(ProcessDefinition.version.desc()).limit(1)
        ).first()

    @staticmethod
    def version(session: Session, key: str, version: int, kind: str = "bpmn") -> ProcessDefinition | None:
        return session.scalars(select(ProcessDefinition).where(
            ProcessDefinition.key == key, ProcessDefinition.version == version,
            ProcessDefinition.kind == kind)).first()

    @staticmethod
    def all_versions(session: Session) -> list[ProcessDefinition]:
        return list(session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key,
                                                                         ProcessDefinition.version)))

    @staticmethod
    def latest_all(session: Session, kind: str | None = None) -> list[ProcessDefinition]:
        newest = (select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("v"))
                  .group_by(ProcessDefinition.key).subquery())
        stmt = select(ProcessDefinition).join(
            newest, (ProcessDefinition.key == newest.c.key) & (ProcessDefinition.version == newest.c.v))
        if kind:
            stmt = stmt.where(ProcessDefinition.kind == kind)
        return list(session.scalars(stmt.order_by(ProcessDefinition.key)))

    # ---- deploying
    def deploy(self, session: Session, files: list[tuple[str, bytes]], actor: str | None,
               max_bytes: int = DEFAULT_MAX_BYTES) -> DeployReport:
        lock_deployments(session)  # the next version numbers are read below: one deploy at a time
        report, good, built = self._check(session, files, max_bytes)
        report.results = self._store(session, good, built, actor)
        return report

    def check(self, session: Session, files: list[tuple[str, bytes]],
              max_bytes: int = DEFAULT_MAX_BYTES) -> DeployReport:
        """Every check `deploy` runs (errors and warnings), storing nothing: the modeler's Validate."""
        return self._check(session, files, max_bytes)[0]

    def _check(self, session: Session, files: list[tuple[str, bytes]],
               max_bytes: int) -> tuple[DeployReport, list[SourceFile], dict[str, Any]]:
        report = DeployReport()
        sources = [read_source(name, content, max_bytes) for name, content in files]
        seen: set[str] = set()
        for s in sources:  # two files of one name: which one a key came from could not be told
            if s.name in seen and not s.problems:
                s.problems = [Problem(s.name, None, "definitions", "a second file of this name in the same "
                                                                   "deployment; give each file its own name")]
            seen.add(s.name)
        good = [s for s in sources if not s.problems]
        for s in sources:
            report.problems.extend(s.problems)
            report.warnings.extend(s.warnings)
        key_owner: dict[str, str] = {}
        for s in list(good):
            for key in s.keys:
                if key in key_owner and key_owner[key] != s.name:
                    report.problems.append(Problem(s.name, _line_of(s, key), key,
                                                   f"also defined in {key_owner[key]}; a key must be unique"))
                    good.remove(s)
                    break
                key_owner[key] = s.name
        # Build and check processes; a file whose processes fail to build deploys nothing.
        while True:
            built, failed = self._build(session, good)
            if not failed:
                break
            for s, problem in failed:
                report.problems.append(problem)
                if s in good:
                    good.remove(s)
        return report, good, built

    def _context_sources(self, session: Session, exclude: set[str]) -> list[tuple[SourceFile, set[str]]]:
        """Latest deployed files for keys not in this batch, so references to them resolve.

        Each file comes with the keys it is the latest version of: a DMN file holds several
        decisions, and an older copy of it must not bring back an older version of a decision.
        """
        out: dict[tuple[str, str], tuple[SourceFile, set[str]]] = {}
        for definition in self.latest_all(session):
            if definition.key in exclude:
                continue
            ident = (definition.source_name, hashlib.sha256(definition.xml.encode()).hexdigest())
            if ident in out:
                out[ident][1].add(definition.key)
                continue
            source = read_source(definition.source_name, definition.xml.encode())
            if not source.problems:
                out[ident] = (source, {definition.key})
        return list(out.values())

    def _build(self, session: Session,
               batch: list[SourceFile]) -> tuple[dict[str, Any], list[tuple[SourceFile, Problem]]]:
        batch_keys = {k for s in batch for k in s.keys}
        context = self._context_sources(session, batch_keys)
        # Batch files win over deployed copies of the same name when a line is looked up.
        by_name = {s.name: s for s, _ in context} | {s.name: s for s in batch}
        parser = PdcaParser()
        failed: list[tuple[SourceFile, Problem]] = []
        decision_xml: dict[str, bytes] = {}
        processes: set[str] = set()
        entries = [(s, set(s.keys)) for s in batch] + context
        for s, wanted in entries:
            try:
                if s.kind == "dmn":
                    for decision_id, doc in _split_decisions(s).items():
                        if decision_id in wanted and decision_id not in decision_xml:
                            parser.add_decision(decision_id, etree.tostring(doc, encoding="unicode"))
                            decision_xml[decision_id] = etree.tostring(doc, method="c14n")
                else:
                    root = _normalise_for_spiff(s.root)
                    for process in list(root.iter(f"{{{BPMN_NS}}}process")):
                        if process.get("id") in processes:  # already known from a newer file
                            process.getparent().remove(process)
                    processes.update(p.get("id") for p in root.iter(f"{{{BPMN_NS}}}process"))
                    parser.add_bpmn_xml(root, filename=s.name)
            except (ValidationException, SpiffWorkflowException) as exc:
                if s in batch:
                    failed.append((s, _problem_from_spiff(exc, by_name, s.name)))
            except Exception as exc:  # noqa: BLE001 - SpiffWorkflow raises plain errors on some malformed models
                if s in batch:
                    failed.append((s, Problem(s.name, None, "definitions", f"cannot be parsed: {exc}")))
        for s in batch:
            if s.kind == "bpmn":
                failed.extend((s, problem) for problem in _unresolved(s, processes, set(decision_xml)))
        if failed:
            return {}, failed
        built: dict[str, Any] = {}
        for s in batch:
            if s.kind == "dmn":
                for key in s.keys:
                    # A decision's version follows its own XML, not its neighbours' in the same file.
                    built[key] = {"kind": "dmn", "source": s, "deps": [], "spec": None,
                                  "own": decision_xml.get(key, s.content)}
                continue
            for key in s.keys:
                try:
                    spec = parser.get_spec(key)
                    subs = parser.get_subprocess_specs(key)
                    missing = [name for name, sub in subs.items() if sub is None]
                    if missing:
                        raise ValidationException(f"called process '{missing[0]}' is not deployed", file_name=s.name)
                except (ValidationException, SpiffWorkflowException) as exc:
                    failed.append((s, _problem_from_spiff(exc, by_name, s.name)))
                    break
                except Exception as exc:  # SpiffWorkflow raises plain errors for some malformed models
                    failed.append((s, Problem(s.name, None, key, f"cannot be parsed: {exc}")))
                    break
                deps = sorted(set(subs) | self._decision_refs(s.root))
                deps = [d for d in deps if d != key]
                built[key] = {"kind": "bpmn", "source": s, "deps": deps, "spec": (spec, subs),
                              "dep_xml": [decision_xml.get(d, b"") for d in deps]}
        return built, failed

    @staticmethod
    def _decision_refs(root: etree._Element) -> set[str]:
        return {el.get(CAMUNDA + "decisionRef") for el in root.iter(f"{{{BPMN_NS}}}businessRuleTask")
                if el.get(CAMUNDA + "decisionRef")}

    def _store(self, session: Session, batch: list[SourceFile], built: dict[str, Any],
               actor: str | None) -> list[DeployResult]:
        results: list[DeployResult] = []
        now = clock.now()
        changed: set[str] = set()
        hashes: dict[str, str] = {}
        # Dependencies first (decisions, called processes) so users hash their new content.
        for key, item in _dependency_order(built):
            s: SourceFile = item["source"]
            dep_hashes = []
            for dep in item["deps"]:
                if dep in hashes:
                    dep_hashes.append(hashes[dep])
                else:
                    latest = self.latest(session, dep, "dmn") or self.latest(session, dep, "bpmn")
                    dep_hashes.append(latest.content_hash if latest else "")
            content_hash = _sha(item.get("own", s.content), *dep_hashes)
            hashes[key] = content_hash
            latest = self.latest(session, key, item["kind"])
            if latest is not None and latest.content_hash == content_hash:
                results.append(DeployResult(key, latest.version, True, item["kind"], file=s.name))
                continue
            spec_json = dump_specs(*item["spec"]) if item["spec"] else None
            name = self._name_of(s, key)
            definition = ProcessDefinition(
                key=key, version=(latest.version + 1) if latest else 1, kind=item["kind"], name=name,
                source_name=s.name, xml=s.content.decode("utf-8"), content_hash=content_hash, spec_json=spec_json,
                dependencies=item["deps"], deployed_at=now, deployed_by=actor,
            )
            session.add(definition)
            changed.add(key)
            results.append(DeployResult(key, definition.version, False, item["kind"], file=s.name))
        session.flush()
        results.extend(self._redeploy_dependents(session, changed, {k for s in batch for k in s.keys}, actor))
        return results

    def _redeploy_dependents(self, session: Session, changed: set[str], in_batch: set[str],
                             actor: str | None) -> list[DeployResult]:
        if not changed:
            return []
        dependents = [d for d in self.latest_all(session, "bpmn")
                      if d.key not in in_batch and set(d.dependencies or []) & changed]
        if not dependents:
            return []
        files = {d.source_name: d.xml.encode() for d in dependents}
        sources = [read_source(name, content) for name, content in files.items()]
        sources = [s for s in sources if not s.problems]
        built, failed = self._build(session, sources)
        built = {k: v for k, v in built.items() if k in {d.key for d in dependents}}
        if failed:
            return []
        results = self._store(session, sources, built, actor)
        reason = "uses " + ", ".join(sorted(changed))
        return [DeployResult(r.key, r.version, r.unchanged, r.kind, reason, r.file) for r in results if not r.unchanged]

    @staticmethod
    def _name_of(source: SourceFile, key: str) -> str | None:
        for el in source.root.iter(etree.Element):
            if el.get("id") == key and local(el.tag) in ("process", "decision"):
                return el.get("name")
        return None


def _dependency_order(built: dict[str, Any]) -> list[tuple[str, Any]]:
    """Items ordered so everything an item depends on (within the batch) comes before it."""
    ordered: list[tuple[str, Any]] = []
    placed: set[str] = set()
    pending = sorted(built.items(), key=lambda kv: (kv[1]["kind"] != "dmn", kv[0]))
    while pending:
        ready = [kv for kv in pending if all(d in placed or d not in built or d == kv[0] for d in kv[1]["deps"])]
        if not ready:  # a call cycle: keep a stable order rather than loop forever
            ready = pending[:1]
        for kv in ready:
            ordered.append(kv)
            placed.add(kv[0])
        pending = [kv for kv in pending if kv[0] not in placed]
    return ordered


def raise_if_problems(report: DeployReport) -> DeployReport:
    if report.problems:
        raise DeploymentError(report.problems)
    return report
