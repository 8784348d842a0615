"""`pdcaflow bench corpus`: how much of a folder of BPMN/DMN files written by others deploys and runs.

For each file (its own throwaway SQLite database, so keys, timers and messages of one file never
reach another): deploy it with the DMN files of its folder (so decision references resolve) and the
folder's BPMN files that define the processes it calls; then start each of its executable processes
through the Runtime service and drive the instance generically until it ends, gets stuck or has an
incident: complete open user tasks with values each form field allows, deliver the messages and
signals it waits for, move the engine clock to its next timer and fire it, complete its external
tasks (when the engine has them). Everything goes through the service layer, as the API would: an
exception other than the engine's own (EngineError and its kinds) escaping a call is a crash, the
kind that becomes an HTTP 500, and is recorded with its text and the last frame it came from.

The corpus itself is not ours and lives outside the repository (see README: bench corpus).
"""

from __future__ import annotations

import logging
import re
import tempfile
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import select

from engine import clock
from engine.definitions import collect_files
from engine.errors import EngineError
from engine.runtime import Runtime
from engine.views import Actor
from storage.db import Database
from storage.models import Timer

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
MAX_STEPS = 50
_ACTOR = Actor.system("corpus-bench")
_TIMER_SLACK = timedelta(seconds=1)
_MAX_GUESSED = 3
_NAME_ERROR = re.compile(r"name '(\w+)' is not defined")
_KEY_ERROR = re.compile(r"^'(\w+)'")
_TEXT_NOT_NUMBER = re.compile(r"between instances of '(str' and '(int|float)|(int|float)' and 'str)'")
_COLLECTION = re.compile(r"collection '(\w+)' is not a variable")
_FLAG = re.compile(r"\$\{\s*!?\s*(\w+)\s*\}")
_COMPARED = re.compile(r"(\w+)\s*==\s*[\"']([^\"']*)[\"']")


@dataclass
class Run:
    """One started process of a file, driven to its end (or as far as it gets)."""

    key: str
    status: str = "not-started"  # completed | incident | stuck | step-limit | start-refused | crashed | not-started
    steps: int = 0
    actions: list[str] = field(default_factory=list)
    problem: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)  # variables guessed because the model needed them


@dataclass
class FileResult:
    file: str
    kind: str  # bpmn | dmn
    outcome: str = ""  # deployed | refused | crashed | skipped
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)  # each problem's message without file, line and element

    @property
    def ran_to_end(self) -> bool:
        return bool(self.runs) and all(r.status == "completed" for r in self.runs)


@dataclass
class Crash:
    """An exception that escaped the service layer: what a web request would answer with a 500."""

    file: str
    during: str
    error: str
    where: str


@dataclass
class Model:
    """What the runner needs to know of a BPMN file, read from its XML."""

    processes: dict[str, str]  # executable process id -> how it starts: none | message:NAME | signal:NAME | timer
    called: set[str]
    defined: set[str]
    literals: dict[str, list[str]] = field(default_factory=dict)  # variable -> strings conditions compare it to
    flags: set[str] = field(default_factory=set)  # variables conditions test as booleans (${approved})


# ---------------------------------------------------------------------- reading the files
def read_model(path: Path) -> Model:
    try:  # from bytes: lxml reading a file reports bad encodings as OSError, not as a syntax error
        root = etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return Model({}, set(), set())  # deploying it is refused with the line and the reason
    processes: dict[str, str] = {}
    defined: set[str] = set()
    messages = {m.get("id"): m.get("name") or m.get("id") for m in root.iter(f"{{{BPMN_NS}}}message")}
    signals = {s.get("id"): s.get("name") or s.get("id") for s in root.iter(f"{{{BPMN_NS}}}signal")}
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        pid = process.get("id")
        defined.add(pid)
        if process.get("isExecutable", "true").lower() == "false":
            continue
        processes[pid] = _start_kind(process, messages, signals)
    called = {c.get("calledElement") for c in root.iter(f"{{{BPMN_NS}}}callActivity") if c.get("calledElement")}
    literals: dict[str, list[str]] = {}
    flags: set[str] = set()
    for condition in root.iter(f"{{{BPMN_NS}}}conditionExpression"):
        for name, value in _COMPARED.findall(condition.text or ""):
            if value not in literals.setdefault(name, []):
                literals[name].append(value)
        flags.update(_FLAG.findall(condition.text or ""))
    return Model(processes, called, defined, literals, flags)


def _start_kind(process: Any, messages: dict[str, str], signals: dict[str, str]) -> str:
    kinds = []
    for start in process.iterchildren(f"{{{BPMN_NS}}}startEvent"):
        definitions = [c for c in start if etree.QName(c).localname.endswith("EventDefinition")]
        if not definitions:
            return "none"
        d = definitions[0]
        name = etree.QName(d).localname
        if name == "messageEventDefinition":
            kinds.append(f"message:{messages.get(d.get('messageRef'), d.get('messageRef'))}")
        elif name == "signalEventDefinition":
            kinds.append(f"signal:{signals.get(d.get('signalRef'), d.get('signalRef'))}")
        else:
            kinds.append(name.removesuffix("EventDefinition"))
    return kinds[0] if kinds else "none"


def collect(paths: Iterable[Path | str]) -> list[Path]:
    """The .bpmn/.dmn files under `paths`, as `pdcaflow deploy` collects them (missing paths left out)."""
    return [p for p in collect_files(paths) if p.is_file()]


def companions(path: Path, models: dict[Path, Model]) -> list[Path]:
    """The DMN files of the file's folder and the folder's BPMN files defining processes it calls
    (transitively), as a Camunda deployment of that folder would hold them."""
    folder = [p for p in models if p.parent == path.parent and p != path]
    out = [p for p in folder if p.suffix.lower() == ".dmn"]
    wanted = set(models[path].called) if path in models else set()
    seen: set[Path] = set()
    while wanted:
        found = [p for p in folder if p.suffix.lower() == ".bpmn" and p not in seen and models[p].defined & wanted]
        if not found:
            break
        seen.update(found)
        wanted = set().union(*(models[p].called for p in found)) - set().union(*(models[p].defined for p in seen))
    return out + sorted(seen)


def _with_conditions_of(model: Model, others: list[Model]) -> Model:
    """The model with the condition literals and flags of the processes it calls (deployed with it)."""
    literals = {name: list(values) for name, values in model.literals.items()}
    for other in others:
        for name, values in other.literals.items():
            literals.setdefault(name, []).extend(v for v in values if v not in literals[name])
    return Model(model.processes, model.called, model.defined, literals,
                 set(model.flags).union(*(o.flags for o in others)))


# ---------------------------------------------------------------------- values for forms
def value_for(form_field: dict[str, Any], attempt: int = 0, literals: list[str] | None = None) -> Any:
    """A value the field's type allows: its default, the first enum option, True, 1, today or "x"
    (for a string the model's conditions compare to literals, those literals in turn).

    `attempt` counts how often the same task came back: a model that loops until a reviewer picks
    another answer gets the next enum option (or False) the next time round, so loops end.
    """
    kind = (form_field.get("type") or "string").lower()
    if kind == "enum":
        options = form_field.get("options") or []
        if attempt or form_field.get("default") in (None, ""):
            return options[attempt % len(options)]["id"] if options else "x"
    if kind == "boolean" and attempt:
        return attempt % 2 == 0
    if form_field.get("default") not in (None, ""):
        return form_field["default"]
    if kind == "boolean":
        return True
    if kind in ("long", "integer", "int", "double", "number", "decimal", "float"):
        return 1
    if kind == "date":
        return date.today().isoformat()
    if literals:
        return literals[attempt % len(literals)]
    return "x"


def form_values(fields: list[dict[str, Any]] | None, attempt: int = 0,
                literals: dict[str, list[str]] | None = None, flags: set[str] | None = None) -> dict[str, Any]:
    literals = literals or {}
    if fields and len(fields) == 1 and fields[0].get("id") == "*":
        # Camunda's generic form (a formKey/formRef task without formData takes any variables): what an
        # embedded form would set, i.e. the variables the model's conditions test
        values: dict[str, Any] = {name: attempt % 2 == 0 for name in sorted(flags or ())}
        values.update({name: options[attempt % len(options)] for name, options in literals.items()})
        return values
    return {f["id"]: value_for(f, attempt, literals.get(f["id"]))
            for f in fields or [] if f.get("id") and not f.get("readonly")}


# ---------------------------------------------------------------------- the run of one file
class _LoggedFailures(logging.Handler):
    """Warnings and tracebacks the engine's workers log while the block runs (they catch their own failures)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.tracebacks: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:500])
        if record.exc_info and record.exc_info[1] is not None:
            self.tracebacks.append(record)

    def __enter__(self) -> _LoggedFailures:
        logging.getLogger("pdcaflow").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("pdcaflow").removeHandler(self)


def _last_frame(exc: BaseException | None) -> str:
    frames = traceback.extract_tb(exc.__traceback__) if exc is not None else []
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


class _Recorder:
    """Calls into the service layer: engine errors are answers, anything else is a crash."""

    def __init__(self, file: str, crashes: list[Crash]) -> None:
        self.file = file
        self.crashes = crashes

    def call(self, during: str, fn: Callable[[], Any]) -> tuple[Any, str | None, bool]:
        """(result, error text, crashed)."""
        try:
            return fn(), None, False
        except EngineError as exc:
            return None, f"{type(exc).__name__}: {exc}", False
        except Exception as exc:  # noqa: BLE001 - the point is to catch what the service layer lets escape
            text = f"{type(exc).__name__}: {exc}"[:500]
            self.crashes.append(Crash(self.file, during, text, _last_frame(exc)))
            return None, text, True


def run_file(path: Path, models: dict[Path, Model], tmp: Path, crashes: list[Crash], root: Path | None = None,
             max_steps: int = MAX_STEPS) -> FileResult:
    name = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
    result = FileResult(name, "dmn" if path.suffix.lower() == ".dmn" else "bpmn")
    db = Database(f"sqlite:///{tmp / 'corpus.sqlite3'}")
    db.create_all()
    rec = _Recorder(name, crashes)
    try:
        runtime = Runtime(db)
        deployed_with = [path, *companions(path, models)]
        files = [(str(p), p.read_bytes()) for p in deployed_with]
        report, error, crashed = rec.call("deploy", lambda: runtime.deploy(files, _ACTOR))
        if crashed or report is None:
            result.outcome = "crashed" if crashed else "refused"
            result.problems.append(error or "deploy failed")
            return result
        mine = [p for p in report.problems if p.file == str(path)]
        result.warnings = [str(w).replace(str(path), name, 1) for w in getattr(report, "warnings", [])
                           if w.file == str(path)]
        if mine:
            result.outcome = "refused"
            result.problems = [str(p).replace(str(path), name, 1) for p in mine]
            result.causes = sorted({p.message for p in mine})
            return result
        result.outcome = "deployed"
        deployed = {r.key for r in report.results}
        for key, start in models.get(path, Model({}, set(), set())).processes.items():
            if key not in deployed:
                continue
            result.runs.append(drive(runtime, rec, key, start, path, max_steps, _with_conditions_of(
                models[path], [models[p] for p in deployed_with if p in models])))
    finally:
        clock.reset()
        db.dispose()
        (tmp / "corpus.sqlite3").unlink(missing_ok=True)
    return result


def _start(runtime: Runtime, rec: _Recorder, run: Run, start: str, path: Path, given: dict[str, Any]) -> str | None:
    """Start one instance the way its start event allows; its id, or None (run says why)."""
    if start in ("none", "timer"):  # a timer-start process may also be started by hand, as in Camunda
        data = {**given, **form_values(_start_form(path, run.key))}
        view, error, crashed = rec.call("start", lambda: runtime.start(run.key, data, _ACTOR))
        if view is None:
            run.status, run.problem = ("crashed" if crashed else "start-refused"), error or ""
            return None
        return view.id
    kind, _, name = start.partition(":")
    if kind == "message":
        _, error, crashed = rec.call("message start", lambda: runtime.correlate_message(name, None, {}, _ACTOR))
    elif kind == "signal" and hasattr(runtime, "signal"):
        _, error, crashed = rec.call("signal start", lambda: runtime.signal(name, {}, _ACTOR))
    else:
        run.problem = f"starts by a {kind} event; the runner does not start those"
        return None
    started = runtime.instances(key=run.key, limit=1)
    if not started:
        run.status = "crashed" if crashed else "start-refused"
        run.problem = error or f"the {kind} '{name}' started no instance"
        return None
    return started[0]["id"]


def _start_form(path: Path, key: str) -> list[dict[str, Any]]:
    try:
        from engine.definitions import start_form_fields

        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
        return start_form_fields(root, key)
    except Exception:  # noqa: BLE001 - the start form is a convenience; without it the start gets no values
        return []


def drive(runtime: Runtime, rec: _Recorder, key: str, start: str, path: Path, max_steps: int = MAX_STEPS,
          model: Model | None = None) -> Run:
    """Run one instance to its end; when it fails for a variable nobody set (Camunda examples are
    started with variables by their tests or forms), start again with that variable = "x"."""
    given: dict[str, Any] = {}
    model = model or Model({}, set(), set())
    while True:
        run = _drive_once(runtime, rec, key, start, path, max_steps, given, model)
        missing = _missing_variable(run.problem) if run.status == "incident" else None
        if missing is None and run.status == "incident" and _TEXT_NOT_NUMBER.search(run.problem):
            texts = [name for name, value in given.items() if value == "x"]
            if texts:  # the guessed text is compared with numbers: guess a number instead
                given[texts[-1]] = 1
                continue
        collection = _COLLECTION.search(run.problem) if run.status == "incident" else None
        if missing is None and collection and collection.group(1) not in given:
            missing = collection.group(1)
        if missing is None or missing in given or len(given) >= _MAX_GUESSED or start not in ("none", "timer"):
            run.inputs = dict(given)
            return run
        # a multi-instance collection: two items; a variable the conditions compare: their first literal
        given[missing] = [1, 2] if collection else (model.literals.get(missing) or ["x"])[0]


def _missing_variable(problem: str) -> str | None:
    match = _NAME_ERROR.search(problem) or _KEY_ERROR.match(problem)
    if match is None or f"{match.group(1)}(" in problem:  # a missing built-in function is no variable
        return None
    return match.group(1)


def _drive_once(runtime: Runtime, rec: _Recorder, key: str, start: str, path: Path, max_steps: int,
                given: dict[str, Any], model: Model) -> Run:
    run = Run(key)
    instance_id = _start(runtime, rec, run, start, path, given)
    if instance_id is None:
        return run
    for step in range(max_steps + 1):
        run.steps = step
        view, error, crashed = rec.call("read instance", lambda: runtime.instance(instance_id))
        if view is None:
            run.status, run.problem = ("crashed" if crashed else "stuck"), error or ""
            return run
        if view.status in ("completed", "cancelled"):
            run.status = view.status
            return run
        if view.status == "incident":
            run.status = "incident"
            run.problem = view.incidents[0].message if view.incidents else "incident"
            return run
        if step == max_steps:
            run.status = "step-limit"
            return run
        moved, problem = _step(runtime, rec, run, instance_id, model)
        if not moved:
            run.status = "crashed" if problem and problem.startswith("crash ") else "stuck"
            run.problem = problem or _waiting_on(runtime, instance_id)
            return run
    return run


def _step(runtime: Runtime, rec: _Recorder, run: Run, instance_id: str, model: Model) -> tuple[bool, str | None]:
    """Do one thing the instance waits for; (moved, problem when nothing could be done)."""
    tasks = runtime.tasks(_ACTOR, instance_id=instance_id)
    for task in tasks:
        values = form_values(task.form, run.actions.count(f"task:{task.spec_id}"), model.literals, model.flags)
        actor = Actor(task.assignee or _ACTOR.username, frozenset(task.groups), "admin")
        _, error, crashed = rec.call(f"complete '{task.name}'", lambda t=task, a=actor, v=values: runtime.complete(t.id, a, v))
        if error:
            return False, ("crash " if crashed else "") + f"completing '{task.name}': {error}"
        run.actions.append(f"task:{task.spec_id}")
        return True, None
    done, problem = _external_task(runtime, rec, run, instance_id)
    if done or problem:
        return done, problem
    for kind, name in _subscriptions(runtime, instance_id):
        if kind == "signal" and hasattr(runtime, "signal"):
            _, error, crashed = rec.call(f"signal '{name}'", lambda n=name: runtime.signal(n, {}, _ACTOR))
        else:
            # the payload another pool would send: what the model's conditions test, varied each time round
            payload = form_values([{"id": "*"}], run.actions.count(f"{kind}:{name}"), model.literals, model.flags)
            _, error, crashed = rec.call(f"message '{name}'", lambda n=name, d=payload: runtime.correlate_message(
                n, instance_id, d, _ACTOR))
        if error:
            return False, ("crash " if crashed else "") + f"delivering {kind} '{name}': {error}"
        run.actions.append(f"{kind}:{name}")
        return True, None
    due = _next_timer(runtime, instance_id)
    if due is not None:
        ahead = due - clock.now() + _TIMER_SLACK
        if ahead > timedelta(0):
            clock.advance(ahead)
        with _LoggedFailures() as logged:
            passed, error, crashed = rec.call("fire timers", lambda: runtime.fire_due_timers("corpus-bench"))
        if error:
            return False, ("crash " if crashed else "") + f"firing a timer: {error}"
        if getattr(passed, "fired", 1) == 0:
            # the timer worker caught the failure itself (retry, then incident): a traceback it logged is a crash
            for record in logged.tracebacks:
                exc = record.exc_info[1] if record.exc_info else None
                rec.crashes.append(Crash(rec.file, "fire timers", f"{type(exc).__name__}: {exc}"[:500],
                                         _last_frame(exc)))
            if logged.tracebacks:
                return False, f"crash the due timer did not fire: {rec.crashes[-1].error}"
            return False, f"the due timer did not fire: {logged.messages[0] if logged.messages else 'nothing logged'}"
        run.actions.append("timer")
        return True, None
    return False, None


def _external_task(runtime: Runtime, rec: _Recorder, run: Run, instance_id: str) -> tuple[bool, str | None]:
    try:
        from engine import external_tasks as xt
    except ImportError:
        return False, None  # this engine has no external tasks
    views, error, crashed = rec.call("list external tasks",
                                     lambda: xt.list_tasks(runtime, _ACTOR, instance_id=instance_id))
    if error:
        return False, ("crash " if crashed else "") + f"listing external tasks: {error}"
    for view in views or []:
        topic = xt.TopicRequest(view.topic, 60_000, instance_id=instance_id)
        locked, error, crashed = rec.call("fetch and lock",
                                          lambda t=topic: xt.fetch_and_lock(runtime, _ACTOR, "corpus-bench", [t]))
        if error:
            return False, ("crash " if crashed else "") + f"locking external task '{view.topic}': {error}"
        for task in locked or []:
            _, error, crashed = rec.call(f"complete external '{task.topic}'",
                                         lambda t=task: xt.complete(runtime, _ACTOR, t.id, "corpus-bench", {}))
            if error:
                return False, ("crash " if crashed else "") + f"completing external task '{task.topic}': {error}"
            run.actions.append(f"external:{task.topic}")
            return True, None
    return False, None


def _subscriptions(runtime: Runtime, instance_id: str) -> list[tuple[str, str]]:
    """(kind, name) of the messages and signals the instance waits for, whichever table holds them."""
    from storage import models

    table = getattr(models, "EventSubscription", None) or getattr(models, "MessageSubscription", None)
    if table is None:
        return []
    with runtime.db.read() as s:
        rows = s.scalars(select(table).where(table.instance_id == instance_id)).all()
        return sorted({(getattr(r, "kind", "message") or "message", r.name) for r in rows})


def _next_timer(runtime: Runtime, instance_id: str) -> datetime | None:
    with runtime.db.read() as s:
        due = s.scalar(select(Timer.due_at).where(Timer.instance_id == instance_id, Timer.state == "waiting")
                       .order_by(Timer.due_at).limit(1))
    if due is not None and due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due


def _waiting_on(runtime: Runtime, instance_id: str) -> str:
    view = runtime.instance(instance_id)
    open_tasks = [t.name for t in view.tasks if t.state in ("open", "claimed")]
    return "waits with nothing the runner can do" + (f" (open tasks: {', '.join(open_tasks)})" if open_tasks else "")


# ---------------------------------------------------------------------- the whole corpus
def run_corpus_bench(paths: Iterable[Path | str], progress: Callable[[str], None] | None = None,
                     max_steps: int = MAX_STEPS) -> dict[str, Any]:
    """Deploy and drive every BPMN/DMN file under `paths`; totals, per-file results and crashes."""
    paths = [Path(p) for p in paths]
    files = collect(paths)
    # every model of the files' folders, so a file given alone still finds its folder's DMN and called processes
    folder_files = collect(sorted({p.parent for p in files}))
    models = {p: read_model(p) for p in folder_files if p.suffix.lower() == ".bpmn"}
    models.update({p: Model({}, set(), set()) for p in folder_files if p.suffix.lower() == ".dmn"})
    crashes: list[Crash] = []
    results: list[FileResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            root = next((p for p in paths if p.is_dir() and path.is_relative_to(p)), None)
            result = run_file(path, models, Path(tmp), crashes, root.parent if root else None, max_steps)
            results.append(result)
            if progress:
                progress(f"{result.file}: {summary_line(result)}")
    runs = [r for f in results for r in f.runs]
    return {
        "bench": "corpus",
        "files": len(results),
        "bpmn": sum(f.kind == "bpmn" for f in results),
        "dmn": sum(f.kind == "dmn" for f in results),
        "deployed": sum(f.outcome == "deployed" for f in results),
        "deployed_with_warnings": sum(f.outcome == "deployed" and bool(f.warnings) for f in results),
        "refused": sum(f.outcome == "refused" for f in results),
        "crashed_on_deploy": sum(f.outcome == "crashed" for f in results),
        "processes_run": len(runs),
        "ran_to_end": sum(r.status == "completed" for r in runs),
        "files_ran_to_end": sum(f.ran_to_end for f in results),
        "incident": sum(r.status == "incident" for r in runs),
        "stuck": sum(r.status in ("stuck", "step-limit") for r in runs),
        "start_refused": sum(r.status == "start-refused" for r in runs),
        "not_started": sum(r.status == "not-started" for r in runs),
        "crashed_runs": sum(r.status == "crashed" for r in runs),
        "crashes": len(crashes),
        "refusal_causes": _grouped((c, f.file) for f in results for c in f.causes),
        "run_problems": _grouped((r.problem or r.status, f.file) for f in results for r in f.runs
                                 if r.status != "completed"),
        "crash_list": [asdict(c) for c in crashes],
        "per_file": [{**asdict(f), "ran_to_end": f.ran_to_end} for f in results],
    }


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """cause -> the files it stopped, most frequent cause first."""
    groups: dict[str, list[str]] = {}
    for cause, file in pairs:
        if file not in groups.setdefault(cause, []):
            groups[cause].append(file)
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))


def summary_line(result: FileResult) -> str:
    if result.outcome != "deployed":
        return f"{result.outcome}: {result.problems[0] if result.problems else ''}"
    if not result.runs:
        return "deployed (nothing to run)"
    return "deployed; " + "; ".join(
        f"{r.key} {r.status}" + (f" ({r.problem})" if r.problem else "")
        + (f" [started with {', '.join(r.inputs)}]" if r.inputs else "") for r in result.runs)


def report_lines(result: dict[str, Any]) -> list[str]:
    """A readable report: one line per file, then the totals and every crash."""
    lines = []
    for f in result["per_file"]:
        r = FileResult(**{k: v for k, v in f.items() if k not in ("runs", "ran_to_end")},
                       runs=[Run(**run) for run in f["runs"]])
        lines.append(f"{r.file}: {summary_line(r)}")
    lines.append("")
    for key in ("files", "bpmn", "dmn", "deployed", "deployed_with_warnings", "refused", "crashed_on_deploy",
                "processes_run", "ran_to_end",
                "files_ran_to_end", "incident", "stuck", "start_refused", "not_started", "crashed_runs", "crashes"):
        lines.append(f"{key:20} {result[key]}")
    for title, key in (("refused because", "refusal_causes"), ("runs that did not end", "run_problems")):
        if result[key]:
            lines += ["", f"{title}:"]
            lines += [f"  {len(files):3}  {cause}\n       {', '.join(files)}" for cause, files in result[key].items()]
    for c in result["crash_list"]:
        lines.append(f"CRASH {c['file']} during {c['during']}: {c['error']} at {c['where']}")
    return lines
