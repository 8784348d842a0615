"""The helpers sandboxed scripts and expressions may call: the one list (`HELPERS`).

Dates travel through process data as ISO text, so every helper takes and gives ISO text; the
current time comes from engine.clock.

Everything here is also imported by the sandbox's worker processes (engine/sandbox_worker.py), where
the namespace of a script is built; objects callers pass in a script's external context must be
picklable and their classes defined here (see the contract in engine/sandbox.py).
"""

from __future__ import annotations

import json
import math
import re
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from typing import Any

from engine import clock


class DataBound:
    """Base of external-context objects that read or write the script's variables by name
    (``execution.getVariable('x')``): the sandbox sends them all task data and calls `bind` with the
    script's namespace (in the worker) before running; writes to it are returned like assignments.
    After a successful run, what the worker's copy recorded in its own attributes (e.g. an assignee
    a task listener set) is copied onto the caller's object with `absorb`.

    The namespace also holds the sandbox's guards (names starting with '_'); skip those when listing.
    """

    def bind(self, variables: dict[str, Any]) -> None:
        self._variables = variables

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_variables", None)  # the namespace stays in the worker
        return state

    def absorb(self, other: DataBound) -> None:
        """Take over the state of the worker's copy after a run."""
        self.__dict__.update(other.__getstate__())


def _empty(value: Any) -> bool:
    """JUEL `empty`: None, '' and empty collections are empty."""
    if value is None:
        return True
    try:
        return len(value) == 0
    except TypeError:
        return False


def _iso(dt: datetime) -> str:
    text = dt.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _now() -> str:
    """Current UTC time, seconds precision, e.g. '2026-01-01T09:00:00Z'."""
    return _iso(clock.now().astimezone(UTC).replace(microsecond=0))


def _today() -> str:
    """Current UTC date, e.g. '2026-01-01'."""
    return clock.now().astimezone(UTC).date().isoformat()


def _parse_datetime(value: Any) -> datetime:
    """ISO date or date-time -> aware datetime; naive values and plain dates
    are taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value.strip())
    else:
        raise TypeError(f"expected an ISO 8601 date/time string, got {value.__class__.__name__}")
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


_DURATION_RE = re.compile(
    r"(?P<sign>-)?P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?",
    re.IGNORECASE,
)


def _parse_duration(text: str) -> tuple[int, int, int, timedelta]:
    """-> (sign, years, months, fixed part)."""
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v and k != "sign"}
    fixed = timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0), hours=parts.get("hours", 0),
                      minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))
    return (-1 if match["sign"] else 1), int(parts.get("years", 0)), int(parts.get("months", 0)), fixed


def _add_months(dt: datetime, months: int) -> datetime:
    index = dt.year * 12 + dt.month - 1 + months
    year, month = divmod(index, 12)
    day = min(dt.day, monthrange(year, month + 1)[1])  # 31 Jan + P1M -> 28/29 Feb
    return dt.replace(year=year, month=month + 1, day=day)


def _add_duration(value: str, duration: str) -> str:
    """Add an ISO 8601 duration to an ISO date or date-time string; a date
    stays a date when the duration has no time part."""
    sign, years, months, fixed = _parse_duration(duration)
    is_date = isinstance(value, str) and len(value.strip()) == 10
    dt = _add_months(_parse_datetime(value), sign * (years * 12 + months)) + sign * fixed
    if is_date and fixed % timedelta(days=1) == timedelta(0):
        return dt.date().isoformat()
    return _iso(dt)


def _days_between(start: str, end: str) -> float:
    """(end - start) in days, fractional."""
    return (_parse_datetime(end) - _parse_datetime(start)) / timedelta(days=1)


def _duration_seconds(duration: str) -> float:
    sign, years, months, fixed = _parse_duration(duration)
    if years or months:
        raise ValueError(f"{duration!r} has years or months, which have no fixed length in seconds")
    return sign * fixed.total_seconds()


HELPERS: dict[str, Any] = {
    # JUEL/FEEL literals, so DMN cells written `true`/`false`/`null` evaluate outside ${...} too
    "true": True, "false": False, "null": None,
    # builtins
    "len": len, "min": min, "max": max, "sum": sum, "abs": abs, "round": round,
    "sorted": sorted, "reversed": reversed, "any": any, "all": all, "map": map, "filter": filter,
    "int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict,
    "set": set, "tuple": tuple, "enumerate": enumerate, "zip": zip,
    # "range" is added by engine/sandbox_guards.py with its size guard
    # exceptions scripts may raise or catch
    "Exception": Exception, "ValueError": ValueError, "TypeError": TypeError,
    "KeyError": KeyError, "IndexError": IndexError, "ZeroDivisionError": ZeroDivisionError,
    # JUEL
    "_empty": _empty,
    # dates and durations (ISO 8601 strings in, JSON-friendly values out)
    "now": _now, "today": _today, "parse_datetime": _parse_datetime,
    "add_duration": _add_duration, "days_between": _days_between,
    "duration_seconds": _duration_seconds,
    # math
    "floor": math.floor, "ceil": math.ceil,
}


# ---------------------------------------------------------------------- Camunda's JUEL built-ins
# `execution`, `task` and `dateTime()` as Camunda 7 users write them in ${...} and in script listeners.
# They are plain objects built from picklable data (a variables dict, the instance id, the business
# key, the task's attributes), so the sandbox can build them in-process or in a worker; every write
# goes into the variables dict (or the task attributes dict) the engine reads back afterwards.
# `_guarded_getattr` refuses names starting with "_", so scripts reach only the public methods.

CONTEXT_KEY = "_pdca_context_"  # external-context key carrying the plain data (unreachable by scripts)


def _plain(value: Any) -> Any:
    return value.toDate() if isinstance(value, DateTime) else value


class Execution:
    """Camunda's DelegateExecution, over the instance's variables."""

    __slots__ = ("_vars", "_ctx")

    def __init__(self, variables: dict[str, Any], context: dict[str, Any]) -> None:
        self._vars = variables
        self._ctx = context

    def getVariable(self, name: str) -> Any:  # noqa: N802 - Camunda's method names
        return self._vars.get(name)

    def getVariables(self) -> dict[str, Any]:  # noqa: N802
        return {k: v for k, v in self._vars.items() if not k.startswith("_") and not isinstance(v, Execution)
                and not callable(v)}

    def hasVariable(self, name: str) -> bool:  # noqa: N802
        return name in self._vars

    def setVariable(self, name: str, value: Any) -> None:  # noqa: N802
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise ValueError(f"invalid variable name {name!r}")
        self._vars[name] = _plain(value)

    def removeVariable(self, name: str) -> None:  # noqa: N802
        self._vars.pop(name, None)

    getVariableLocal = getVariable
    setVariableLocal = setVariable
    removeVariableLocal = removeVariable
    hasVariableLocal = hasVariable
    getVariablesLocal = getVariables

    def getProcessInstanceId(self) -> str | None:  # noqa: N802
        return self._ctx.get("instance_id")

    def getProcessBusinessKey(self) -> str | None:  # noqa: N802
        return self._ctx.get("business_key")

    getBusinessKey = getProcessBusinessKey

    def getId(self) -> str | None:  # noqa: N802
        return self._ctx.get("execution_id") or self._ctx.get("instance_id")

    def getProcessDefinitionId(self) -> str | None:  # noqa: N802
        return self._ctx.get("process_key")

    def getCurrentActivityId(self) -> str | None:  # noqa: N802
        return self._ctx.get("activity_id")

    def getCurrentActivityName(self) -> str | None:  # noqa: N802
        return self._ctx.get("activity_name")

    def getActivityInstanceId(self) -> str | None:  # noqa: N802
        return self._ctx.get("execution_id")

    def getEventName(self) -> str | None:  # noqa: N802
        return self._ctx.get("event")


class TaskDelegate(Execution):
    """Camunda's DelegateTask in a task listener; attribute changes land in context['task']."""

    __slots__ = ()

    def _task(self) -> dict[str, Any]:
        return self._ctx.setdefault("task", {})

    def getName(self) -> str | None:  # noqa: N802
        return self._task().get("name")

    def setName(self, name: str) -> None:  # noqa: N802
        self._task()["name"] = str(name)

    def getId(self) -> str | None:  # noqa: N802
        return self._task().get("id")

    def getTaskDefinitionKey(self) -> str | None:  # noqa: N802
        return self._task().get("definition_key")

    def getDescription(self) -> str | None:  # noqa: N802
        return self._task().get("description")

    def getAssignee(self) -> str | None:  # noqa: N802
        return self._task().get("assignee")

    def setAssignee(self, assignee: str | None) -> None:  # noqa: N802
        self._task()["assignee"] = None if assignee in (None, "") else str(assignee)

    def getOwner(self) -> str | None:  # noqa: N802
        return self._task().get("owner")

    def getPriority(self) -> int | None:  # noqa: N802
        return self._task().get("priority")

    def setPriority(self, priority: int) -> None:  # noqa: N802
        self._task()["priority"] = int(priority)

    def getDueDate(self) -> str | None:  # noqa: N802
        return self._task().get("due")

    def setDueDate(self, due: Any) -> None:  # noqa: N802
        self._task()["due"] = _plain(due)

    def getFollowUpDate(self) -> str | None:  # noqa: N802
        return self._task().get("follow_up")

    def setFollowUpDate(self, when: Any) -> None:  # noqa: N802
        self._task()["follow_up"] = _plain(when)

    def getCandidateGroups(self) -> list[str]:  # noqa: N802
        return list(self._task().get("candidate_groups") or [])

    def addCandidateGroup(self, group: str) -> None:  # noqa: N802
        groups = self._task().setdefault("candidate_groups", [])
        if str(group) not in groups:
            groups.append(str(group))

    def getExecution(self) -> Execution:  # noqa: N802
        return Execution(self._vars, self._ctx)

    def getExecutionId(self) -> str | None:  # noqa: N802
        return self._ctx.get("execution_id") or self._ctx.get("instance_id")

    def getEventName(self) -> str | None:  # noqa: N802
        return self._ctx.get("event")


class DateTime:
    """The Joda-Time DateTime Camunda's `dateTime()` returns: immutable, UTC, ISO text out."""

    __slots__ = ("_dt",)

    def __init__(self, dt: datetime) -> None:
        self._dt = dt

    def _shift(self, **delta: int) -> DateTime:
        return DateTime(self._dt + timedelta(**delta))

    def _months(self, months: int) -> DateTime:
        return DateTime(_add_months(self._dt, int(months)))

    def plusYears(self, n: int) -> DateTime:  # noqa: N802 - Joda's method names
        return self._months(12 * int(n))

    def plusMonths(self, n: int) -> DateTime:  # noqa: N802
        return self._months(int(n))

    def plusWeeks(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(weeks=int(n))

    def plusDays(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(days=int(n))

    def plusHours(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(hours=int(n))

    def plusMinutes(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(minutes=int(n))

    def plusSeconds(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(seconds=int(n))

    def minusYears(self, n: int) -> DateTime:  # noqa: N802
        return self._months(-12 * int(n))

    def minusMonths(self, n: int) -> DateTime:  # noqa: N802
        return self._months(-int(n))

    def minusWeeks(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(weeks=-int(n))

    def minusDays(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(days=-int(n))

    def minusHours(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(hours=-int(n))

    def minusMinutes(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(minutes=-int(n))

    def minusSeconds(self, n: int) -> DateTime:  # noqa: N802
        return self._shift(seconds=-int(n))

    def withTimeAtStartOfDay(self) -> DateTime:  # noqa: N802
        return DateTime(self._dt.replace(hour=0, minute=0, second=0, microsecond=0))

    def getYear(self) -> int:  # noqa: N802
        return self._dt.year

    def getMonthOfYear(self) -> int:  # noqa: N802
        return self._dt.month

    def getDayOfMonth(self) -> int:  # noqa: N802
        return self._dt.day

    def getDayOfWeek(self) -> int:  # noqa: N802
        return self._dt.isoweekday()

    def getHourOfDay(self) -> int:  # noqa: N802
        return self._dt.hour

    def isBefore(self, other: Any) -> bool:  # noqa: N802
        return self._dt < _as_datetime(other)

    def isAfter(self, other: Any) -> bool:  # noqa: N802
        return self._dt > _as_datetime(other)

    def toDate(self) -> str:  # noqa: N802 - a java.util.Date; process data keeps dates as ISO text
        return _iso(self._dt)

    def toString(self, *_pattern: Any) -> str:  # noqa: N802
        return _iso(self._dt)

    def __str__(self) -> str:
        return _iso(self._dt)


def _as_datetime(value: Any) -> datetime:
    return value._dt if isinstance(value, DateTime) else _parse_datetime(value)


def _date_time(value: Any = None) -> DateTime:
    """Camunda's `dateTime()`: now (the engine clock), or the given ISO date/time."""
    if value is None:
        return DateTime(clock.now().astimezone(UTC).replace(microsecond=0))
    return DateTime(_as_datetime(value).astimezone(UTC))


HELPERS["dateTime"] = _date_time


# ---------------------------------------------------------------------- Camunda Spin's JSON
class SpinJson:
    """Camunda Spin's JSON node, as `S(text)` / `JSON(text)` give it: how Camunda models read a JSON
    text (an http-connector's `response`): `S(response).prop("order").prop("id").stringValue()`.
    Stored as a variable, a node is its JSON text (Spin's toString)."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def _object(self) -> dict[str, Any]:
        if not isinstance(self._value, dict):
            raise ValueError(f"the JSON value {self} is not an object")
        return self._value

    def prop(self, name: str, *value: Any) -> SpinJson:
        """The property `name`; with a value, sets it and returns this node (Spin's fluent setter)."""
        if value:
            self._object()[name] = value[0]._value if isinstance(value[0], SpinJson) else value[0]
            return self
        if name not in self._object():
            raise KeyError(f"the JSON object has no property '{name}'")
        return SpinJson(self._object()[name])

    def hasProp(self, name: str) -> bool:  # noqa: N802 - Spin's method names
        return isinstance(self._value, dict) and name in self._value

    def deleteProp(self, name: str) -> SpinJson:  # noqa: N802
        self._object().pop(name, None)
        return self

    def fieldNames(self) -> list[str]:  # noqa: N802
        return list(self._object())

    def elements(self) -> list[SpinJson]:
        if not isinstance(self._value, list):
            raise ValueError(f"the JSON value {self} is not an array")
        return [SpinJson(v) for v in self._value]

    def _typed(self, kinds: tuple[type, ...], what: str) -> Any:
        if not isinstance(self._value, kinds) or (bool not in kinds and isinstance(self._value, bool)):
            raise ValueError(f"the JSON value {self} is not {what}")
        return self._value

    def stringValue(self) -> str:  # noqa: N802
        return self._typed((str,), "a string")

    def numberValue(self) -> int | float:  # noqa: N802
        return self._typed((int, float), "a number")

    def boolValue(self) -> bool:  # noqa: N802
        return self._typed((bool,), "a boolean")

    def value(self) -> Any:
        return self._value

    def isObject(self) -> bool:  # noqa: N802
        return isinstance(self._value, dict)

    def isArray(self) -> bool:  # noqa: N802
        return isinstance(self._value, list)

    def isString(self) -> bool:  # noqa: N802
        return isinstance(self._value, str)

    def isNumber(self) -> bool:  # noqa: N802
        return isinstance(self._value, (int, float)) and not isinstance(self._value, bool)

    def isBoolean(self) -> bool:  # noqa: N802
        return isinstance(self._value, bool)

    def isNull(self) -> bool:  # noqa: N802
        return self._value is None

    def isValue(self) -> bool:  # noqa: N802
        return not isinstance(self._value, (dict, list))

    def toString(self) -> str:  # noqa: N802
        return json.dumps(self._value)

    def __str__(self) -> str:
        return self.toString()


def _spin(value: Any, *_format: Any) -> SpinJson:
    """Camunda Spin's `S(value)` / `JSON(value)`: a JSON text (or a map or list variable) as a node."""
    if isinstance(value, SpinJson):
        return value
    if isinstance(value, str):
        try:
            return SpinJson(json.loads(value))
        except ValueError as exc:
            raise ValueError(f"S(): the text is not JSON (Camunda Spin's XML is not offered): {exc}") from None
    return SpinJson(value)


HELPERS["S"] = HELPERS["JSON"] = _spin

# Methods a model may call on each built-in: the deploy check refuses any other (engine/definition_checks.py).
BUILTIN_METHODS: dict[str, frozenset[str]] = {
    "execution": frozenset(n for n in dir(Execution) if not n.startswith("_")),
    "task": frozenset(n for n in dir(TaskDelegate) if not n.startswith("_")),
    "dateTime": frozenset(n for n in dir(DateTime) if not n.startswith("_")),
    "S": frozenset(n for n in dir(SpinJson) if not n.startswith("_")),
}


def camunda_objects(context: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """`execution` (and `task` in a task listener) over `variables`, from the plain context data."""
    objects: dict[str, Any] = {"execution": Execution(variables, context)}
    if "task" in context:
        objects["task"] = TaskDelegate(variables, context)
    return objects


def _is_date_time(expr: Any) -> bool:
    """Whether an AST expression evaluates to a DateTime: dateTime() and its plus/minus chains."""
    import ast

    if not isinstance(expr, ast.Call):
        return False
    if isinstance(expr.func, ast.Name):
        return expr.func.id == "dateTime"
    return (isinstance(expr.func, ast.Attribute) and expr.func.attr.startswith(("plus", "minus", "withTime"))
            and _is_date_time(expr.func.value))


def unknown_builtin_calls(tree: Any) -> list[str]:
    """`execution.fooBar()`-style calls of methods the built-ins do not have, as 'execution.fooBar'."""
    import ast

    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner, method = node.func.value, node.func.attr
        if isinstance(owner, ast.Name) and owner.id in ("execution", "task"):
            if method not in BUILTIN_METHODS[owner.id]:
                found.add(f"{owner.id}.{method}")
        elif _is_date_time(owner) and method not in BUILTIN_METHODS["dateTime"]:
            found.add(f"dateTime().{method}")
        elif _is_spin(owner) and method not in BUILTIN_METHODS["S"]:
            found.add(f"S().{method}")
    return sorted(found)


def _is_spin(expr: Any) -> bool:
    """Whether an AST expression evaluates to a Spin JSON node: S(...)/JSON(...) and prop() chains."""
    import ast

    if not isinstance(expr, ast.Call):
        return False
    if isinstance(expr.func, ast.Name):
        return expr.func.id in ("S", "JSON")
    return isinstance(expr.func, ast.Attribute) and expr.func.attr in ("prop", "deleteProp") and _is_spin(expr.func.value)
