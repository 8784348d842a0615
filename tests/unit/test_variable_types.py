"""Which declared Camunda variable types an instance keeps (engine/runtime/variable_types.py)."""

from engine.runtime.variable_types import REMEMBERED, declare, fits, surviving


def test_only_types_inference_gets_wrong_are_remembered():
    assert declare(None, ["a", "b", "c", "d"], {"a": "Long", "b": "Integer", "c": "String", "d": "Date"}) == {
        "a": "Long", "d": "Date"}
    assert {"Integer", "String", "Boolean", "Json", "Double", "Null"}.isdisjoint(REMEMBERED)


def test_a_new_write_replaces_or_forgets_the_type_of_that_name_only():
    current = {"a": "Long", "b": "Short"}
    assert declare(current, ["a"], {}) == {"b": "Short"}  # sent without a type: inferred from now on
    assert declare(current, ["b"], {"b": "Long"}) == {"a": "Long", "b": "Long"}
    assert current == {"a": "Long", "b": "Short"}  # the caller's mapping is left alone


def test_a_type_survives_while_the_value_fits_it():
    types = {"n": "Long", "s": "Short", "d": "Date", "x": "Xml", "gone": "Long"}
    data = {"n": 6, "s": 40000, "d": "2026-12-02T10:00:00.000+0000", "x": "<a/>"}
    assert surviving(types, data) == {"n": "Long", "d": "Date", "x": "Xml"}
    assert surviving(types, {"n": "six", "d": "tomorrow"}) is None
    assert surviving(None, data) is None


def test_fits():
    assert fits("Long", 2**63 - 1) and not fits("Long", 2**63) and not fits("Long", True) and not fits("Long", 5.0)
    assert fits("Short", -32768) and not fits("Short", 32768)
    assert fits("Date", "2026-12-02T10:00:00Z") and fits("Date", "2026-12-02") and not fits("Date", 20261202)
    assert not fits("Integer", 5)  # not a remembered type
