"""The form model of a user task or a start event, built from `camunda:formData`, and its validation.

One model serves the HTML page, the API document and validation: `form_fields()` turns the
SpiffWorkflow form into plain dicts (`form_data_fields()` does the same for a formData element,
e.g. a start event's, which SpiffWorkflow does not parse), `validate_submission()` checks a
submission with a marshmallow schema built from those dicts and names every bad field, and
`validate_start_data()` does so for the data an instance is started with.

A user task with a `camunda:formKey` or `camunda:formRef` but no `camunda:formData` (an embedded
form, Camunda Forms, an external app) has Camunda's *generic form*: it accepts whatever variables the client submits.
Its form model is the single marker field `GENERIC_FORM` (`is_generic`); the variable names must be
identifiers (or dotted paths of them) so scripts and expressions can read them.

Besides Camunda's constraints (required, readonly, minlength, maxlength, min, max) a string field
may carry the property `format` = `email` (`<camunda:property id="format" value="email"/>`):
Camunda keeps properties as plain metadata, where an unknown constraint name would not deploy
there. Likewise `directory` = `user` (the value must be an active user's name; checked by the
runtime, `user_fields`) and, on a date field, `not_past` = `true` (today or later).
"""

from __future__ import annotations

import functools
import json
import re
from datetime import date, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from SpiffWorkflow.camunda.specs.user_task import EnumFormField, Form, FormField

from engine import clock
from engine.errors import FormValidationError

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
FIELD_TYPES = ("string", "long", "boolean", "date", "enum")
_TRUE = {"true", "on", "1", "yes"}
_FALSE = {"false", "off", "0", "no", ""}


def form_fields(form: Any) -> list[dict[str, Any]]:
    """Plain, JSON-friendly description of the form's fields."""
    out = []
    for f in getattr(form, "fields", []) or []:
        validation = {v.name: v.config for v in f.validation}
        field: dict[str, Any] = {
            "id": f.id,
            "label": f.label or f.id,
            "type": f.type or "string",
            "required": "required" in validation and str(validation["required"]).lower() not in ("false", "0"),
            "readonly": "readonly" in validation,
            "default": f.default_value or None,
            "validation": {k: v for k, v in validation.items() if k not in ("required", "readonly")},
            "properties": {p.id: p.value for p in f.properties},
        }
        if field["type"] == "enum":
            field["options"] = [{"id": o.id, "name": o.name or o.id} for o in f.options]
        else:
            field["options"] = []
        out.append(field)
    return out


def form_data_fields(form_data: Any) -> list[dict[str, Any]]:
    """`form_fields()` of a `camunda:formData` XML element, read as SpiffWorkflow reads a user task's."""
    form = Form()
    for xml_field in form_data.iterchildren(f"{{{CAMUNDA_NS}}}formField"):
        field = EnumFormField() if xml_field.get("type") == "enum" else FormField()
        field.id = xml_field.get("id")
        field.type = xml_field.get("type")
        field.label = xml_field.get("label")
        field.default_value = xml_field.get("defaultValue")
        for child in xml_field.iterchildren(f"{{{CAMUNDA_NS}}}properties"):
            for p in child.iterchildren(f"{{{CAMUNDA_NS}}}property"):
                field.add_property(p.get("id"), p.get("value"))
        for child in xml_field.iterchildren(f"{{{CAMUNDA_NS}}}validation"):
            for v in child.iterchildren(f"{{{CAMUNDA_NS}}}constraint"):
                field.add_validation(v.get("name"), v.get("config"))
        if isinstance(field, EnumFormField):
            for option in xml_field.iterchildren(f"{{{CAMUNDA_NS}}}value"):
                field.add_option(option.get("id"), option.get("name"))
        form.add_field(field)
    return form_fields(form)


class _Bool(fields.Field):
    """Checkbox and JSON booleans: HTML sends 'on' or nothing."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return True
        if isinstance(value, str) and value.strip().lower() in _FALSE:
            return False
        raise ValidationError("must be true or false")


class _Long(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("must be a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,18}\s*", value):
            return int(value)
        raise ValidationError("must be a whole number")


class _Date(fields.Field):
    """ISO date or date-time; stored as the ISO text so task data stays JSON."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("must be a date like 2026-03-31")
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
        except ValueError as exc:
            raise ValidationError("must be a date like 2026-03-31") from exc


class _Str(fields.Field):
    """Text without surrounding white space, so a length limit counts what was actually written."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, (dict, list)):
            raise ValidationError("must be text")
        return str(value).strip()


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _flag(value: Any) -> bool:
    return str(value or "").strip().lower() in ("true", "1", "yes")


def _not_in_the_past(value: str) -> None:
    """A date field with the property `not_past`: today or later (UTC, the engine's clock)."""
    if value[:10] < clock.now().date().isoformat():
        raise ValidationError("must not be in the past")


def user_fields(spec_fields: list[dict[str, Any]]) -> list[str]:
    """Ids of the fields whose value names a user (property `directory` = `user`): the runtime checks
    each against the active accounts, which this pure module cannot read."""
    return [f["id"] for f in spec_fields if (f.get("properties") or {}).get("directory") == "user"]


def _field(spec: dict[str, Any]) -> fields.Field:
    kind = spec["type"]
    rules = spec["validation"]
    validators: list[Any] = []
    if kind == "long":
        lo, hi = _number(rules.get("min")), _number(rules.get("max"))
        if lo is not None or hi is not None:
            validators.append(validate.Range(min=lo, max=hi))
        cls: type[fields.Field] = _Long
    elif kind == "boolean":
        cls = _Bool
    elif kind == "date":
        if _flag((spec.get("properties") or {}).get("not_past")):
            validators.append(_not_in_the_past)
        cls = _Date
    elif kind == "enum":
        validators.append(validate.OneOf([o["id"] for o in spec["options"]],
                                         error="must be one of: {choices}"))
        cls = _Str
    else:
        lo, hi = _number(rules.get("minlength")), _number(rules.get("maxlength"))
        if lo is not None:
            validators.append(validate.Length(min=int(lo), error="must be at least {min} characters"))
        if hi is not None:
            validators.append(validate.Length(max=int(hi), error="must be at most {max} characters"))
        if (spec.get("properties") or {}).get("format") == "email":
            validators.append(validate.Email(error="is not a valid e-mail address"))
        cls = _Str
    return cls(required=spec["required"], allow_none=not spec["required"], validate=validators,
               error_messages={"required": "is required", "null": "is required"})


def build_schema(spec_fields: list[dict[str, Any]]) -> Schema:
    """A marshmallow schema keyed by field id (dotted ids stay flat keys, e.g. 'action.done_at')."""
    declared = {_safe_name(i): _field(f) for i, f in enumerate(spec_fields) if not f.get("readonly")}
    for i, f in enumerate(spec_fields):
        if not f.get("readonly"):
            declared[_safe_name(i)].data_key = f["id"]
    return Schema.from_dict(declared, name="TaskForm")()


@functools.lru_cache(maxsize=512)
def _cached_schema(shape: str) -> Schema:
    return build_schema(json.loads(shape))


def schema_for(spec_fields: list[dict[str, Any]]) -> Schema:
    """The schema of a form, built once per form shape (defaults and labels do not change validation)."""
    shape = json.dumps([{k: f.get(k) for k in ("id", "type", "required", "readonly", "validation", "options",
                                               "properties")}
                        for f in spec_fields], sort_keys=True, default=str)
    return _cached_schema(shape)


GENERIC_FORM_ID = "*"
GENERIC_FORM: dict[str, Any] = {
    "id": GENERIC_FORM_ID, "label": "Variables (JSON object)", "type": "variables", "required": False,
    "readonly": False, "default": None, "validation": {}, "properties": {}, "options": [],
}
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def generic_form() -> list[dict[str, Any]]:
    """The form model of a task with a form key and no form fields: any variables are accepted."""
    return [dict(GENERIC_FORM)]


def is_generic(spec_fields: list[dict[str, Any]] | None) -> bool:
    return bool(spec_fields) and len(spec_fields) == 1 and spec_fields[0].get("id") == GENERIC_FORM_ID


def _validate_variables(data: dict[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """Camunda's generic form: every submitted variable is taken, if its name can be read back."""
    errors = [{"field": key, "message": "is not a usable variable name (letters, digits and _, "
                                        "not starting with a digit or __; dots for nested values)"}
              for key in data if not isinstance(key, str) or not _VARIABLE_NAME.match(key) or key.startswith("__")]
    return ({} if errors else dict(data)), errors


def _safe_name(index: int) -> str:
    # marshmallow reads dots in attribute names as paths into nested objects; ids stay in data_key.
    return f"field_{index}"


def validate_submission(spec_fields: list[dict[str, Any]], data: dict[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """Return (clean values, errors). Each error is {"field": id, "message": text}."""
    if not isinstance(data, dict):
        return {}, [{"field": None, "message": "the submission must be an object of field values"}]
    if is_generic(spec_fields):
        return _validate_variables(data)
    by_id = {f["id"]: f for f in spec_fields}
    cleaned_input: dict[str, Any] = {}
    blank: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for key, value in data.items():
        if key not in by_id:
            errors.append({"field": key, "message": "is not a field of this form"})
            continue
        if by_id[key].get("readonly"):
            continue
        # An empty HTML input means "no value"; required fields then report "is required".
        if isinstance(value, str) and value.strip() == "" and by_id[key]["type"] != "string":
            continue
        if isinstance(value, str) and value.strip() == "":
            if not by_id[key]["required"]:
                blank[key] = ""  # an optional text left empty: no length or format rule applies
            continue
        cleaned_input[key] = value
    for f in spec_fields:
        if f["type"] == "boolean" and f["id"] not in cleaned_input and not f["required"]:
            cleaned_input[f["id"]] = False  # an unticked checkbox is not sent at all
    try:
        loaded = schema_for(spec_fields).load(cleaned_input)
        ids = {_safe_name(i): f["id"] for i, f in enumerate(spec_fields)}
        values = {ids[name]: value for name, value in loaded.items()} | blank
    except ValidationError as exc:
        for name, messages in sorted(exc.normalized_messages().items()):
            text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            errors.append({"field": name, "message": text})
        values = {}
    return values, errors


def validate_start_data(spec_fields: list[dict[str, Any]], data: dict[str, Any]
                        ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check the data an instance starts with against its start form: (data with the form's fields
    validated and coerced, errors). Variables that are not form fields pass unchanged, because
    programmatic starts carry extra data (a reference, a channel, settings for timers)."""
    if not isinstance(data, dict):
        return {}, [{"field": None, "message": "the start data must be an object of variables"}]
    ids = [f["id"] for f in spec_fields if not f.get("readonly")]
    declared: dict[str, Any] = {}
    for fid in ids:
        if fid in data:
            declared[fid] = data[fid]
        elif "." in fid and get_path(data, fid) is not None:  # a dotted id given as nested objects
            declared[fid] = get_path(data, fid)
    values, errors = validate_submission(spec_fields, declared)
    if errors:
        return {}, errors
    out = {k: v for k, v in data.items() if k not in ids}
    for fid, value in values.items():
        set_path(out, fid, value)
    return out, []


def check_start_data(spec_fields: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """`validate_start_data`, raising FormValidationError that names every bad field."""
    if not spec_fields:
        return data
    values, errors = validate_start_data(spec_fields, data)
    if errors:
        raise invalid(errors)
    return values


def invalid(errors: list[dict[str, Any]]) -> FormValidationError:
    """The error for a submission with these field errors (422, `details` name the fields)."""
    names = ", ".join(e["field"] or "form" for e in errors)
    return FormValidationError(f"please correct: {names}", errors)


def json_schema(spec_fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON Schema object of a form (for the OpenAPI document): the same limits the validation applies."""
    properties: dict[str, Any] = {}
    required = []
    for f in spec_fields:
        if f.get("readonly"):
            continue
        rules = f.get("validation") or {}
        prop: dict[str, Any] = {"description": f.get("label") or f["id"]}
        if f["type"] == "long":
            prop["type"] = "integer"
            for key, name in (("min", "minimum"), ("max", "maximum")):
                bound = _number(rules.get(key))
                if bound is not None:
                    prop[name] = int(bound) if bound.is_integer() else bound
        elif f["type"] == "boolean":
            prop["type"] = "boolean"
        elif f["type"] == "date":
            prop.update(type="string", format="date")
        elif f["type"] == "enum":
            prop.update(type="string", enum=[o["id"] for o in f["options"]])
        else:
            prop["type"] = "string"
            for key, name in (("minlength", "minLength"), ("maxlength", "maxLength")):
                bound = _number(rules.get(key))
                if bound is not None:
                    prop[name] = int(bound)
            if f["required"]:
                prop["minLength"] = max(prop.get("minLength", 1), 1)
            if (f.get("properties") or {}).get("format") == "email":
                prop["format"] = "email"
        properties[f["id"]] = prop
        if f["required"]:
            required.append(f["id"])
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Field ids may be dotted (`action.done_at`): write into the nested dict."""
    parts = dotted.split(".")
    target = data
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            target[part] = nxt
        target = nxt
    target[parts[-1]] = value


def get_path(data: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """Read a dotted field id (`action.done_at`) from nested dicts."""
    target: Any = data
    for part in dotted.split("."):
        if not isinstance(target, dict) or part not in target:
            return default
        target = target[part]
    return target
