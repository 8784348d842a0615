"""Normalising BPMN/DMN expression text (JUEL and ISO 8601) into Python."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.expressions import is_iso_literal, to_python, translate_juel


@pytest.mark.parametrize(
    ("juel", "python"),
    [
        ("a && b", "a and b"),
        ("a&&b", "a and b"),
        ("a || b", "a or b"),
        ("!urgent", "not urgent"),
        ("!(a || b)", "not (a or b)"),
        ("a != b", "a != b"),
        ("a!=b", "a!=b"),
        ("amount gt 100 && !urgent", "amount > 100 and not urgent"),
        ("x eq 1", "x == 1"),
        ("x ne 1", "x != 1"),
        ("x lt 1", "x < 1"),
        ("x gt 1", "x > 1"),
        ("x le 1", "x <= 1"),
        ("x ge 1", "x >= 1"),
        ("not done", "not done"),
        ("a and b or c", "a and b or c"),
        ("true", "True"),
        ("false || null", "False or None"),
        ("empty items", "_empty(items)"),
        ("empty order.items", "_empty(order.items)"),
        ("not empty order.lines[0].sku", "not _empty(order.lines[0].sku)"),
        ("!empty (a && b)", "not _empty(a and b)"),
        # words that merely contain or equal operator names are left alone
        ("equal eq 1", "equal == 1"),
        ("order.lt_value ge 2", "order.lt_value >= 2"),
        ("order.lt", "order.lt"),
        ("lt > 3", "lt > 3"),
        ("empty == 1", "empty == 1"),
        ("truely && falsey", "truely and falsey"),
        # string literals are never touched
        ('x eq "a && b"', 'x == "a && b"'),
        ("s eq 'x eq y || !z'", "s == 'x eq y || !z'"),
        (r"s eq 'it\'s && ok'", r"s == 'it\'s && ok'"),
        (r's eq "say \"true\""', r's == "say \"true\""'),
        ('severity == "critical"', 'severity == "critical"'),
    ],
)
def test_translate_juel(juel: str, python: str) -> None:
    assert translate_juel(juel) == python


@pytest.mark.parametrize(
    ("text", "python"),
    [
        ("${amount gt 100}", "amount > 100"),
        ("  ${ !urgent }  ", "not urgent"),
        ("#{a && b}", "a and b"),
        ('${status eq "done"}', 'status == "done"'),
        # already Python: unchanged
        ('severity == "critical"', 'severity == "critical"'),
        ('"PT3S"', '"PT3S"'),
        ("${a} + ${b}", "${a} + ${b}"),
    ],
)
def test_to_python_translates_wrapped_juel_only(text: str, python: str) -> None:
    assert to_python(text) == python


@pytest.mark.parametrize(
    "text",
    [
        "PT3S", "P2D", "P1Y2M10DT2H30M", "P2W", "PT0.5S", "-P1D",
        "2026-01-01", "2026-01-01T09:00:00Z", "2026-01-01T09:00:00+02:00", "2026-01-01T09:00",
        "R3/PT10M", "R/PT1H", "R2/2026-01-01T00:00:00Z/P1D",
        "2026-01-01T00:00:00Z/2026-02-01T00:00:00Z",
    ],
)
def test_iso_text_becomes_a_string_literal(text: str) -> None:
    assert is_iso_literal(text)
    assert to_python(text) == repr(text)
    assert to_python(f" {text}\n") == repr(text)


@pytest.mark.parametrize("text", ["P", "PT", "P1D/P2D", "Period", "amount", "x - 1", "'PT3S'", "R3", ""])
def test_non_iso_text_is_not_an_iso_literal(text: str) -> None:
    assert not is_iso_literal(text)


_code_tokens = st.sampled_from(
    ["a", "b.c", " ", "&&", "||", "!", "!=", "eq", "gt", "empty", "true", "null", "(", ")", "1", "==", ".lt"]
)
_literal_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


def _quote(text: str, quote: str) -> str:
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


@given(
    st.lists(
        st.one_of(
            _code_tokens.map(lambda t: ("code", t)),
            st.tuples(_literal_text, st.sampled_from(["'", '"'])).map(lambda p: ("lit", _quote(*p))),
        ),
        max_size=12,
    )
)
def test_translate_juel_never_changes_string_literals(parts: list[tuple[str, str]]) -> None:
    source = "".join(f" {text} " for _, text in parts)
    translated = translate_juel(source)
    position = 0
    for kind, text in parts:
        if kind == "lit":
            found = translated.find(text, position)
            assert found >= 0, (text, translated)
            position = found + len(text)
