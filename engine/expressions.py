"""Normalise expression text from BPMN/DMN files into Python expression source.

Camunda Modeler writes JUEL-style ``${...}`` expressions and bare ISO 8601
timer text, while the sandbox only understands Python.  Everything here is
pure text processing (a small hand-written scanner, never ``eval``) so it is
safe to run on untrusted model files.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["is_iso_literal", "template_parts", "to_python", "translate_juel"]

# --- ISO 8601 -------------------------------------------------------------

_NUM = r"\d+(?:[.,]\d+)?"
_DURATION = (
    rf"-?P(?=\d|T\d)(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
    rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?"
)
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATETIME = (
    rf"{_DATE}(?:T\d{{2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_POINT = rf"(?:{_DATETIME}|{_DURATION})"
# Durations, points in time, intervals (start/end, start/duration,
# duration/end) and recurring intervals (R[n]/...).
_ISO_RE = re.compile(
    rf"(?:R\d*/{_POINT}(?:/{_POINT})?|{_POINT}(?:/{_POINT})?)",
    re.IGNORECASE,
)


def is_iso_literal(text: str) -> bool:
    """True if ``text`` is bare ISO 8601 timer text (duration, date, date-time,
    interval or recurring interval)."""
    stripped = text.strip()
    if not stripped or _ISO_RE.fullmatch(stripped) is None:
        return False
    # An interval made of two durations ("P1D/P2D") is not valid ISO 8601.
    parts = [p for p in stripped.split("/") if not p.upper().startswith("R")]
    return not (len(parts) == 2 and all(p.lstrip("-").upper().startswith("P") for p in parts))


# --- JUEL -----------------------------------------------------------------

# Binary word operators only make sense between two operands; requiring an
# operand on the left keeps variables that happen to be called `lt` working.
_BINARY_WORDS = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=",
                 "and": "and", "or": "or", "div": "/", "mod": "%"}
_CONSTANTS = {"true": "True", "false": "False", "null": "None"}

_IDENT_START = re.compile(r"[A-Za-z_]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"\d[\dA-Za-z_.]*")


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal opening at ``start`` (escapes
    respected); an unterminated literal runs to the end of the text."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            return i + 1
        i += 1
    return len(text)


def _group_end(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``start``."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[text[start]]]
    i = start + 1
    while i < len(text) and stack:
        ch = text[i]
        if ch in "'\"":
            i = _string_end(text, i)
            continue
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch == stack[-1]:
            stack.pop()
        i += 1
    return i


def _operand_end(text: str, start: int) -> int | None:
    """End of the operand of ``empty`` starting at ``start``: a parenthesised
    group, or a name with any dotted/indexed/call suffixes.  None if there is
    no operand (then ``empty`` is just a variable name)."""
    if start >= len(text):
        return None
    if text[start] == "(":
        return _group_end(text, start)
    match = _IDENT.match(text, start)
    if match is None or match.group() in _BINARY_WORDS:
        return None
    i = match.end()
    while i < len(text):
        if text[i] == "." and _IDENT.match(text, i + 1):
            i = _IDENT.match(text, i + 1).end()  # type: ignore[union-attr]
        elif text[i] in "[(":
            i = _group_end(text, i)
        else:
            break
    return i


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


@lru_cache(maxsize=4096)
def translate_juel(expr: str) -> str:
    """Translate JUEL operators (``&&``, ``||``, ``!``, ``eq``, ``gt``,
    ``empty x``, ``true``/``null``...) into Python, leaving string literals and
    unrelated names untouched."""
    out: list[str] = []
    # Whether the last emitted token ends an operand (name, literal, closing
    # bracket); decides between binary and prefix readings of a word.
    after_operand = False
    after_dot = False
    i = 0
    n = len(expr)

    def emit_word(word: str) -> None:
        # Pad inserted word operators so `a&&b` becomes `a and b`.
        if out and out[-1] and not out[-1][-1].isspace() and out[-1][-1] not in "([{":
            out.append(" ")
        out.append(word)
        if i < n and not expr[i].isspace():
            out.append(" ")

    while i < n:
        ch = expr[i]
        if ch in "'\"":
            end = _string_end(expr, i)
            out.append(expr[i:end])
            i, after_operand, after_dot = end, True, False
        elif ch.isdigit():
            end = _NUMBER.match(expr, i).end()  # type: ignore[union-attr]
            out.append(expr[i:end])
            i, after_operand, after_dot = end, True, False
        elif _IDENT_START.match(ch):
            word = _IDENT.match(expr, i).group()  # type: ignore[union-attr]
            start, i = i, i + len(word)
            if after_dot:
                out.append(word)
                after_operand = True
            elif word in _CONSTANTS:
                out.append(_CONSTANTS[word])
                after_operand = True
            elif after_operand and word in _BINARY_WORDS:
                emit_word(_BINARY_WORDS[word])
                after_operand = False
            elif not after_operand and word == "empty":
                op_start = _skip_space(expr, i)
                op_end = _operand_end(expr, op_start)
                if op_end is None:
                    out.append(word)
                else:
                    inner = translate_juel(expr[op_start:op_end])
                    if inner.startswith("(") and _group_end(inner, 0) == len(inner):
                        inner = inner[1:-1]
                    out.append(f"_empty({inner})")
                    i = op_end
                after_operand = True
            elif word == "not":
                out.append(word)
                after_operand = False
            else:
                out.append(expr[start:i])
                after_operand = True
            after_dot = False
        elif expr.startswith("&&", i) or expr.startswith("||", i):
            i += 2
            emit_word("and" if ch == "&" else "or")
            after_operand = after_dot = False
        elif ch == "!" and not expr.startswith("!=", i):
            i += 1
            emit_word("not")
            after_operand = after_dot = False
        elif ch.isspace():
            out.append(ch)
            i += 1
        else:
            # Operators and brackets; `!=`, `==`, `<=` etc. are copied as is.
            two = expr[i:i + 2]
            token = two if two in ("!=", "==", "<=", ">=", "**", "//") else ch
            out.append(token)
            i += len(token)
            after_operand = token in (")", "]", "}")
            after_dot = token == "."
    return "".join(out)


def _wrapped_body(text: str) -> str | None:
    """Inner text if the whole of ``text`` is one ``${...}`` (or ``#{...}``)."""
    if len(text) < 3 or text[0] not in "$#" or text[1] != "{" or text[-1] != "}":
        return None
    if _group_end(text, 1) != len(text):
        return None  # e.g. "${a} + ${b}": two expressions, not one wrapper
    return text[2:-1]


def template_parts(text: str) -> list[tuple[bool, str]] | None:
    """JUEL composite text ("${base}/orders/${id}"): its pieces in order, each (is an expression,
    text), an expression piece being a whole ``${...}``; None when the text holds no expression or is
    one expression as a whole."""
    stripped = text.strip()
    if ("${" not in text and "#{" not in text) or _wrapped_body(stripped) is not None:
        return None
    parts: list[tuple[bool, str]] = []
    i = start = 0
    while i < len(text) - 1:
        if text[i] in "$#" and text[i + 1] == "{":
            end = _group_end(text, i + 1)
            if text[start:i]:
                parts.append((False, text[start:i]))
            parts.append((True, text[i:end]))
            i = start = end
        else:
            i += 1
    if text[start:]:
        parts.append((False, text[start:]))
    return parts


@lru_cache(maxsize=4096)
def to_python(text: str) -> str:
    """Turn any expression text from a BPMN/DMN file into Python source:
    ``${juel}`` is translated, bare ISO 8601 timer text becomes a string
    literal, anything else is assumed to be Python already."""
    stripped = text.strip()
    body = _wrapped_body(stripped)
    if body is not None:
        return translate_juel(body).strip()
    if is_iso_literal(stripped):
        return repr(stripped)
    return text
