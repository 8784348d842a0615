"""Request schemas of the Camunda 7 REST subset (`/engine-rest`), Camunda's typed variables and its
timestamp format. Real clients send fields we do not use (`sorting`, `processVariables`,
`includeExtensionProperties`, `deserializeValues`, `withoutTenantId`, nulls...): every schema
accepts and ignores unknown fields, and nulls where Camunda allows them.
"""

from __future__ import annotations

import json
import operator
import re
from datetime import UTC, datetime
from typing import Any

from flask import request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from engine.runtime.variable_types import parse_date

INT32 = 2**31 - 1


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


def _opt_int(**kw: Any) -> fields.Integer:
    return fields.Integer(load_default=None, allow_none=True, strict=False, **kw)


def _opt_str() -> fields.String:
    return fields.String(load_default=None, allow_none=True)


def _variables() -> fields.Dict:
    return fields.Dict(keys=fields.String(), load_default=None, allow_none=True)


def _opt_strings() -> fields.List:
    return fields.List(fields.String(), load_default=None, allow_none=True)


def _opt_flag() -> fields.Boolean:
    return fields.Boolean(load_default=False, allow_none=True)


class TopicRequest(_Lenient):
    topicName = fields.String(required=True, validate=validate.Length(min=1, max=255))
    lockDuration = fields.Integer(required=True, validate=validate.Range(min=0, max=INT32 * 1000))
    variables = _opt_strings()
    businessKey = _opt_str()
    # Camunda's narrowing filters (FetchExternalTaskTopicDto); each one given must hold
    processDefinitionKey = _opt_str()
    processDefinitionKeyIn = _opt_strings()
    processDefinitionId = _opt_str()
    processDefinitionIdIn = _opt_strings()
    processDefinitionVersionTag = _opt_str()  # no definition here has a version tag: matches none
    tenantIdIn = _opt_strings()  # no task here has a tenant: a non-empty list matches none
    withoutTenantId = _opt_flag()  # every task here is without a tenant
    processInstanceId = _opt_str()  # PDCA Flow's own (Camunda's topics have no such filter)
    processVariables = _variables()  # untyped {name: value} filter, as Camunda's clients send it
    includeExtensionProperties = _opt_flag()
    localVariables = _opt_flag()  # only the task's local variables (its input parameters)


class SortingRequest(_Lenient):
    sortBy = fields.String(required=True, validate=validate.OneOf(["createTime"]))
    sortOrder = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["asc", "desc"]))


class FetchAndLockRequest(_Lenient):
    workerId = fields.String(required=True, validate=validate.Length(min=1, max=255))
    maxTasks = _opt_int(validate=validate.Range(min=0, max=1000))
    usePriority = fields.Boolean(load_default=False, allow_none=True)
    asyncResponseTimeout = _opt_int(validate=validate.Range(min=0, max=1_800_000))
    topics = fields.List(fields.Nested(TopicRequest), load_default=None, allow_none=True)
    sorting = fields.List(fields.Nested(SortingRequest), load_default=None, allow_none=True)


class CompleteRequest(_Lenient):
    workerId = fields.String(required=True)
    variables = _variables()
    localVariables = _variables()


class FailureRequest(_Lenient):
    workerId = fields.String(required=True)
    errorMessage = _opt_str()
    errorDetails = _opt_str()
    retries = _opt_int(validate=validate.Range(min=0, max=INT32))
    retryTimeout = _opt_int(validate=validate.Range(min=0, max=INT32 * 1000))
    variables = _variables()
    localVariables = _variables()


class BpmnErrorRequest(_Lenient):
    workerId = fields.String(required=True)
    errorCode = fields.String(required=True, validate=validate.Length(min=1, max=255))
    errorMessage = _opt_str()
    variables = _variables()


class ExtendLockRequest(_Lenient):
    workerId = fields.String(required=True)
    newDuration = fields.Integer(required=True, validate=validate.Range(min=1, max=INT32 * 1000))  # Camunda: > 0


class LockRequest(_Lenient):
    workerId = fields.String(required=True, validate=validate.Length(min=1, max=255))
    lockDuration = fields.Integer(required=True, validate=validate.Range(min=1, max=INT32 * 1000))  # Camunda: > 0


class RetriesRequest(_Lenient):
    retries = fields.Integer(required=True, validate=validate.Range(min=0, max=INT32))


class StartRequest(_Lenient):
    variables = _variables()
    businessKey = _opt_str()
    withVariablesInReturn = _opt_flag()


class MessageRequest(_Lenient):
    messageName = fields.String(required=True, validate=validate.Length(min=1, max=255))
    businessKey = _opt_str()
    processInstanceId = _opt_str()
    correlationKeys = _variables()
    processVariables = _variables()
    processVariablesLocal = _variables()
    processVariablesToTriggeredScope = _variables()
    localCorrelationKeys = _variables()  # refused when given: this subset cannot see execution-local variables
    tenantId = _opt_str()  # no tenants here: a message for one matches nothing
    all = fields.Boolean(load_default=False, allow_none=True)
    resultEnabled = fields.Boolean(load_default=False, allow_none=True)
    variablesInResultEnabled = fields.Boolean(load_default=False, allow_none=True)


class SignalRequest(_Lenient):
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    variables = _variables()
    executionId = _opt_str()  # delivering to one execution only is not supported: refused when given
    tenantId = _opt_str()  # no tenants here: a signal for one reaches nobody


class ModifyVariablesRequest(_Lenient):
    modifications = _variables()  # typed values to set
    deletions = _opt_strings()  # names to remove


class VariableRequest(_Lenient):  # one typed value (PUT .../variables/{name})
    value = fields.Raw(load_default=None, allow_none=True)
    type = _opt_str()
    valueInfo = fields.Dict(load_default=None, allow_none=True)


class EvaluateRequest(_Lenient):
    variables = _variables()


class ClaimRequest(_Lenient):
    userId = _opt_str()


class TaskCompleteRequest(_Lenient):
    variables = _variables()
    withVariablesInReturn = fields.Boolean(load_default=False, allow_none=True)


class _Sorting(_Lenient):
    sortBy = fields.String(required=True)
    sortOrder = fields.String(load_default="asc", allow_none=True)


class _VariableCondition(_Lenient):
    name = fields.String(required=True)
    operator = fields.String(required=True)
    value = fields.Raw(required=True, allow_none=True)


class _ListQuery(_Lenient):
    """What the JSON queries (POST /task, /process-instance and their counts) share."""

    sorting = fields.List(fields.Nested(_Sorting), load_default=None, allow_none=True)
    tenantIdIn = _opt_strings()


class TaskQueryRequest(_ListQuery):  # TaskQueryDto's everyday filters
    taskId, name, nameLike, assignee = _opt_str(), _opt_str(), _opt_str(), _opt_str()
    taskDefinitionKey, processInstanceId, processDefinitionKey = _opt_str(), _opt_str(), _opt_str()
    processInstanceBusinessKey, candidateUser, candidateGroup = _opt_str(), _opt_str(), _opt_str()
    assigneeIn, taskDefinitionKeyIn, candidateGroups = _opt_strings(), _opt_strings(), _opt_strings()
    assigned, unassigned, includeAssignedTasks = _opt_flag(), _opt_flag(), _opt_flag()


class InstanceQueryRequest(_ListQuery):  # ProcessInstanceQueryDto's everyday filters
    processDefinitionKey, processDefinitionId, businessKey = _opt_str(), _opt_str(), _opt_str()
    businessKeyLike = _opt_str()
    processDefinitionKeyIn, processInstanceIds = _opt_strings(), _opt_strings()
    suspended = _opt_flag()
    variables = fields.List(fields.Nested(_VariableCondition), load_default=None, allow_none=True)


class BadRequest(Exception):
    """Input that does not fit: Camunda answers 400 InvalidRequestException."""


def load(schema: Schema, payload: Any) -> dict[str, Any]:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object")
    try:
        return schema.load(payload)
    except ValidationError as exc:
        problems = []
        for name, messages in sorted(exc.normalized_messages().items()):
            text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else json.dumps(messages)
            problems.append(f"{name}: {text}")
        raise BadRequest("Invalid request: " + "; ".join(problems)) from exc


# ---------------------------------------------------------------------- typed variables
_INT_TYPES = ("integer", "long", "short")


_TYPE_NAMES = {name.lower(): name for name in ("String", "Integer", "Long", "Short", "Double", "Boolean", "Date",
                                                "Json", "Object", "Xml", "Null")}


def typed_input(variables: dict[str, Any] | None, where: str = "variables") -> tuple[dict[str, Any], dict[str, str]]:
    """Camunda's `{"name": {"value": v, "type": "String|Integer|Long|Short|Double|Boolean|Date|Json|Null"}}`
    as process data, and the type each was sent with (Camunda's spelling; none for a value sent
    without one). A value sent without a type keeps its JSON type; a Date stays its ISO text. The
    engine remembers the types the values cannot tell (engine/runtime/variable_types.py)."""
    values: dict[str, Any] = {}
    types: dict[str, str] = {}
    for name, item in (variables or {}).items():
        if not isinstance(item, dict) or ("value" not in item and "type" not in item):
            raise BadRequest(f"{where}.{name}: expected an object {{\"value\": ..., \"type\": ...}}")
        kind = str(item.get("type") or "")
        values[name] = _value(item.get("value"), kind, f"{where}.{name}")
        if kind.lower() in _TYPE_NAMES:  # (a null sent with a type of no meaning here stays accepted, untyped)
            types[name] = _TYPE_NAMES[kind.lower()]
    return values, types


def typed_inputs(body: dict[str, Any], *fields: str) -> tuple[dict[str, Any], dict[str, str]]:
    """`typed_input` of several fields of a request, merged: a later field's variable wins."""
    values: dict[str, Any] = {}
    types: dict[str, str] = {}
    for name in fields:
        more_values, more_types = typed_input(body.get(name), name)
        for key in more_values:
            types.pop(key, None)
        values.update(more_values)
        types.update(more_types)
    return values, types


def from_typed(variables: dict[str, Any] | None, where: str = "variables") -> dict[str, Any]:
    """`typed_input`'s values alone (filters, correlation keys, decision inputs: nothing is stored)."""
    return typed_input(variables, where)[0]


def _value(value: Any, kind: str, where: str) -> Any:
    kind = kind.lower()
    if value is None or kind in ("", "null"):
        return value
    try:
        if kind == "string":
            return str(value)
        if kind in _INT_TYPES:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "double":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
        if kind == "date":
            parse_timestamp(str(value))
            return str(value)
        if kind in ("json", "object", "xml"):
            return json.loads(value) if isinstance(value, str) and kind == "json" else value
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: {value!r} is not a valid {kind} value") from exc
    raise BadRequest(f"{where}: variables of type '{kind}' are not supported "
                     "(String, Integer, Long, Short, Double, Boolean, Date, Json, Null)")


def typed(data: dict[str, Any], types: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Process data as Camunda's typed variables: the type the engine remembers for a variable
    (`types`), else the type inferred from the value."""
    if not types:
        return {name: typed_value(value) for name, value in data.items()}
    return {name: typed_value(value, types.get(name)) for name, value in data.items()}


def typed_value(value: Any, type_: str | None = None) -> dict[str, Any]:
    if type_ is not None and value is not None:
        if type_ == "Date":  # Camunda's format, whatever ISO form it was sent in
            try:
                return {"type": "Date", "value": timestamp(parse_timestamp(str(value))), "valueInfo": {}}
            except ValueError:
                pass  # not a date (after all): inferred below
        else:
            return {"type": type_, "value": value, "valueInfo": {}}
    if value is None:
        return {"type": "Null", "value": None, "valueInfo": {}}
    if isinstance(value, bool):
        return {"type": "Boolean", "value": value, "valueInfo": {}}
    if isinstance(value, int):
        return {"type": "Integer" if -INT32 - 1 <= value <= INT32 else "Long", "value": value, "valueInfo": {}}
    if isinstance(value, float):
        return {"type": "Double", "value": value, "valueInfo": {}}
    if isinstance(value, (dict, list)):
        return {"type": "Json", "value": json.dumps(value), "valueInfo": {}}
    return {"type": "String", "value": str(value), "valueInfo": {}}


# ---------------------------------------------------------------------- timestamps
def timestamp(value: datetime | None) -> str | None:
    """Camunda's format: `2026-12-02T10:00:00.000+0000` (UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


parse_timestamp = parse_date  # ISO 8601, also in Camunda's form (one rule: the engine's, for Date variables)


# ---------------------------------------------------------------------- variable conditions of a GET query
_COMPARISONS = {"eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gteq": operator.ge, "lt": operator.lt,
                "lteq": operator.le}
_OPERATORS = (*_COMPARISONS, "like")


def variable_conditions(text: str | None) -> list[tuple[str, str, str]]:
    """`variables=name_operator_value,...` of a GET query (Camunda's format: each expression exactly
    three parts split on `_`, so a name or value with `_` cannot be expressed, as in Camunda)."""
    conditions = []
    for expression in (text or "").split(","):
        if not expression:
            continue
        parts = expression.split("_")
        if len(parts) != 3:
            raise BadRequest("variable query parameter has to have format KEY_OPERATOR_VALUE.")
        name, comparator, value = parts
        if comparator not in _OPERATORS:
            raise BadRequest(f"Invalid variable comparator specified: {comparator}")
        conditions.append((name, comparator, value))
    return conditions


def meets(data: dict[str, Any], conditions: list[tuple[str, str, str]]) -> bool:
    """Whether process data meets every condition. The query's value is text: it is compared with a
    number as a number (when it reads as one), with anything else as text."""
    return all(name in data and _compare(data[name], comparator, value) for name, comparator, value in conditions)


def _compare(actual: Any, comparator: str, text: str) -> bool:
    expected: Any = text
    if isinstance(actual, bool):
        actual, expected = str(actual).lower(), text.lower()
    elif isinstance(actual, (int, float)):
        try:
            expected = float(text)
        except ValueError:
            actual = str(actual)
    elif not isinstance(actual, str):
        return False  # null and Json values meet no condition
    if comparator == "like":
        return isinstance(actual, str) and _like(text).fullmatch(actual) is not None
    return _COMPARISONS[comparator](actual, expected)


def _like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE's `%`: any run of characters (its `_` cannot occur in a GET value)."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")), re.DOTALL)


# ---------------------------------------------------------------------- ids and query parameters
def definition_id(key: str, version: int) -> str:
    return f"{key}:{version}"  # opaque to clients (Camunda's is key:version:uuid)


def definition_of(definition_id: str) -> tuple[str, int] | None:
    """(key, version) of a `definition_id`; None for an id this server never gave out."""
    key, _, version = definition_id.rpartition(":")
    return (key, int(version)) if key and version.isdigit() else None


def flag(name: str) -> bool | None:
    value = request.args.get(name)
    return None if value is None else value.lower() in ("1", "true", "yes")


def int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        return min(max(0, int(value)), 10**9)
    except ValueError as exc:
        raise BadRequest(f"{name}: '{value}' is not a whole number") from exc


def page(default: int, most: int) -> tuple[int, int]:
    """(firstResult, maxResults) of a list request. Camunda lists everything unless told; a list here
    answers at most `most` rows per request (`default` when maxResults is not given), and
    `firstResult` pages on past them, so nothing is out of reach."""
    return int_arg("firstResult", 0), min(int_arg("maxResults", default), most)


def listed(name: str) -> list[str] | None:
    """A comma-separated list parameter (None when absent)."""
    value = request.args.get(name)
    return None if value is None else [v for v in value.split(",") if v]


def sorting(fields: tuple[str, ...]) -> tuple[str, bool] | None:
    """(sortBy, descending) of a GET query: both parameters or neither, as Camunda requires."""
    sort_by, sort_order = request.args.get("sortBy"), request.args.get("sortOrder")
    if (sort_by is None) != (sort_order is None):
        raise BadRequest("Only a single sorting parameter specified. sortBy and sortOrder required")
    if sort_by is None:
        return None
    return _sort_key(fields, sort_by, sort_order)


def _sort_key(fields: tuple[str, ...], sort_by: str, sort_order: str | None) -> tuple[str, bool]:
    if sort_by not in fields:
        raise BadRequest(f"Cannot set query parameter 'sortBy' to value '{sort_by}'")
    if sort_order not in ("asc", "desc"):
        raise BadRequest(f"Cannot set query parameter 'sortOrder' to value '{sort_order}'")
    return sort_by, sort_order == "desc"


class Query:
    """A list query's parameters: a GET query string's (lists comma-separated, `variables` as
    name_operator_value, sortBy with sortOrder) or, `from_body`, a POST body's as a schema loaded it
    (Camunda's JSON query: lists as arrays, `variables` as [{name, operator, value}], `sorting` as
    [{sortBy, sortOrder}], the first entry first). Paging stays in the query string either way."""

    def __init__(self, values: Any = None, from_body: bool = False) -> None:
        self.values = request.args if values is None else values
        self.from_body = from_body

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name)) if self.from_body else bool(flag(name))

    def listed(self, name: str) -> tuple[str, ...] | None:
        values = self.values.get(name) if self.from_body else listed(name)
        return None if values is None else tuple(values)

    def sorting(self, fields: tuple[str, ...]) -> list[tuple[str, bool]]:
        if not self.from_body:
            one = sorting(fields)
            return [] if one is None else [one]
        return [_sort_key(fields, o["sortBy"], o.get("sortOrder") or "asc") for o in self.values.get("sorting") or []]

    def conditions(self) -> list[tuple[str, str, str]]:
        """The `variables` conditions as (name, operator, value as text), as `meets` takes them."""
        if not self.from_body:
            return variable_conditions(self.values.get("variables"))
        out = []
        for c in self.values.get("variables") or []:
            if c["operator"] not in _OPERATORS:
                raise BadRequest(f"Invalid variable comparator specified: {c['operator']}")
            value = c["value"]
            if value is None or isinstance(value, (dict, list)):
                raise BadRequest(f"variables: {c['name']}: compare with a string, number or boolean")
            out.append((c["name"], c["operator"], str(value).lower() if isinstance(value, bool) else str(value)))
        return out


def opt_int_arg(name: str) -> int | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: '{value}' is not a whole number") from exc
