"""The Camunda types of process variables that their values alone cannot tell (`/engine-rest`).

A caller of `/engine-rest` sends each variable with a type; process data keeps only the value, and a
reader infers the type back from it (engine-rest's `typed_value`). That inference is wrong for a
few types, which a Java worker then fails to cast: a small `Long` or `Short` reads as Integer, a
`Date` (kept as its text) as String. So an instance remembers those declared types beside its data
(`process_instance.variable_types`, `{name: "Long"}`; never in the data scripts, forms, FEEL and DMN
see) as long as the value still fits the type, as a Camunda variable keeps its type until a new
value of another kind replaces it:

- a variable set through `/engine-rest` takes the type it was sent with (`declare`): one of
  REMEMBERED is kept, any other (or none: inferred) forgets what the name had;
- at every save (`surviving`), a remembered type whose value is gone or no longer fits (a script
  made the Long a text, a number out of Short's range, a date text that no longer reads as one) is
  forgotten, and the type is inferred again.

Writes made elsewhere (the inbox, `/api/v1`, scripts) declare nothing: the fit rule alone applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

_LONG = (-(2**63), 2**63 - 1)
_SHORT = (-(2**15), 2**15 - 1)


def parse_date(text: str) -> datetime:
    """An ISO 8601 timestamp, also in Camunda's REST form `2026-12-02T10:00:00.000+0000`; ValueError if
    it is none."""
    cleaned = text.strip()
    if len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-4:].isdigit():
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    return datetime.fromisoformat(cleaned.replace("Z", "+00:00"))


def _whole_in(value: Any, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def _date_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_date(value)
    except ValueError:
        return False
    return True


# the types inference gets wrong, each with what a value must be to keep it
_FITS = {
    "Long": lambda v: _whole_in(v, _LONG),
    "Short": lambda v: _whole_in(v, _SHORT),
    "Date": _date_text,
    "Xml": lambda v: isinstance(v, str),
}
REMEMBERED = frozenset(_FITS)


def fits(type_: str, value: Any) -> bool:
    check = _FITS.get(type_)
    return check is not None and check(value)


def declare(current: Mapping[str, str] | None, written: Iterable[str],
            declared: Mapping[str, str]) -> dict[str, str]:
    """The types after `/engine-rest` wrote the variables `written`, each with its `declared` type
    (Camunda's name, e.g. "Long"; a name missing from `declared` was sent without one)."""
    types = dict(current or {})
    for name in written:
        type_ = declared.get(name)
        if type_ in REMEMBERED:
            types[name] = type_
        else:
            types.pop(name, None)
    return types


def surviving(types: Mapping[str, str] | None, data: Mapping[str, Any]) -> dict[str, str] | None:
    """The types whose variable still exists and fits them (None for none)."""
    if not types:
        return None
    kept = {name: type_ for name, type_ in types.items() if name in data and fits(type_, data[name])}
    return kept or None
