"""The FEEL grammar (DMN 1.3 chapter 10) and its parser: text in, a lark tree out.

Two entry points share one grammar: `expression` (literal expressions, input expressions, output
entries) and `unary_tests` (input entries of a decision table). The tree is interpreted by
engine/dmn/feel.py; nothing here evaluates anything.

Lexing notes (why the grammar looks the way it does):
- FEEL names may contain spaces ("Monthly Salary", "string length"): a name is a run of words;
- a few built-in names contain keywords ("date and time", "day of week"), so they are one token;
- `[1..5[` closes a range with `[`: a `[` that can only end a range (followed by the end, a comma
  or a parenthesis) is its own token, so it never reads as the start of a filter.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

GRAMMAR = r"""
?start_expression: expression
?start_unary_tests: unary_tests

unary_tests: DASH_ONLY                                  -> any_input
           | positive_unary_test ("," positive_unary_test)*  -> tests

?positive_unary_test: simple_test | expression
simple_test: CMP_OP expression                        -> compare_test

?expression: for_expr | if_expr | quantified | function_def | disjunction

for_expr: "for" iteration ("," iteration)* "return" expression
iteration: name "in" expression (".." expression)?
if_expr: "if" expression "then" expression "else" expression
quantified: QUANTIFIER name "in" expression ("," name "in" expression)* "satisfies" expression
function_def: "function" "(" [param ("," param)*] ")" expression
param: name (":" type_name)?

?disjunction: conjunction | disjunction "or" conjunction -> or_
?conjunction: comparison | conjunction "and" comparison  -> and_
?comparison: additive
           | additive CMP_OP additive                  -> compare
           | additive "between" additive "and" additive -> between
           | additive "in" in_target                    -> in_
           | additive INSTANCE_OF type_name             -> instance_of
?in_target: additive | simple_test | "(" positive_unary_test ("," positive_unary_test)* ")" -> test_list
?additive: multiplicative
         | additive "+" multiplicative                  -> add
         | additive "-" multiplicative                  -> sub
?multiplicative: power
         | multiplicative "*" power                     -> mul
         | multiplicative "/" power                     -> div
?power: unary | power "**" unary                        -> pow
?unary: postfix | "-" unary                             -> neg
?postfix: primary
        | postfix "." name                              -> path
        | postfix "[" expression "]"                    -> filter
        | postfix "(" [arguments] ")"                   -> call
        | NOT_CALL unary_tests_inner ")"                -> not_call
unary_tests_inner: positive_unary_test ("," positive_unary_test)*
arguments: expression ("," expression)*                 -> positional
         | named_arg ("," named_arg)*                   -> named
named_arg: name ":" expression

?primary: NUMBER                                        -> number
        | STRING                                        -> string
        | "true"                                        -> true
        | "false"                                       -> false
        | "null"                                        -> null
        | name                                          -> var
        | "(" expression ")"
        | "[" [expression ("," expression)*] "]"         -> list_
        | "{" [context_entry ("," context_entry)*] "}"  -> context
        | range
        | "@" STRING                                    -> at_literal

range: RANGE_START expression ".." expression RANGE_END
context_entry: (name | STRING) ":" expression

type_name: name ("<" type_name ("," type_name)* ">")?

name: (SPECIAL_NAME | WORD) (SPECIAL_NAME | WORD | NAME_DIGITS)*
NAME_DIGITS: /\d+(?![\d.])/
INSTANCE_OF.3: /instance\s+of(?![\w?'])/
SPECIAL_NAME.3: /SPECIAL_NAMES/
WORD: /(?!(KEYWORDS)(?![\w?']))[A-Za-z_\u00C0-\uFFFF?][A-Za-z0-9_\u00C0-\uFFFF?']*/

QUANTIFIER: "some" | "every"
NOT_CALL.4: /not\s*\(/
CMP_OP: "<=" | ">=" | "!=" | "<" | ">" | "="
RANGE_START: "[" | "]" | "("
RANGE_END.2: /\[(?=\s*(,|\)|$))/ | "]" | ")"
DASH_ONLY.5: /-(?=\s*$)/
NUMBER: /(\d+(\.\d+)?|\.\d+)([eE][-+]?\d+)?/
STRING: /"(\\.|[^"\\])*"/

%import common.WS
%ignore WS
%ignore /\/\/[^\n]*/
%ignore /\/\*(.|\n)*?\*\//
"""
# A word that is a keyword is not (part of) a name: `a and b` is a conjunction, not one name.
KEYWORDS = ("and", "or", "in", "if", "then", "else", "for", "return", "some", "every", "satisfies", "between",
            "instance", "function", "true", "false", "null")
# Built-in names that contain a keyword are one token.
SPECIAL_NAMES = ("date and time", "years and months duration", "days and time duration", "day of week", "day of year",
                 "month of year", "week of year")
GRAMMAR = GRAMMAR.replace("SPECIAL_NAMES", "|".join(SPECIAL_NAMES)).replace("KEYWORDS", "|".join(KEYWORDS))


class FeelSyntaxError(ValueError):
    """A FEEL text that does not parse; `column` is 1-based within the text."""

    def __init__(self, text: str, message: str, column: int | None = None) -> None:
        self.text = text
        self.column = column
        where = f" at column {column}" if column and column > 0 else " at the end"
        super().__init__(f"FEEL syntax error{where} in {text!r}: {message}")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, start=["start_expression", "start_unary_tests"], parser="earley",
                lexer="dynamic", ambiguity="resolve", propagate_positions=False)


def _describe(exc: LarkError) -> tuple[str, int | None]:
    if isinstance(exc, UnexpectedToken):
        token = "the end" if exc.token.type == "$END" else repr(str(exc.token))
        return f"unexpected {token}", exc.column if exc.column and exc.column > 0 else None
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {exc.char!r}", exc.column
    if isinstance(exc, UnexpectedInput):
        return "the expression is incomplete", getattr(exc, "column", None)
    return str(exc).splitlines()[0], None


@lru_cache(maxsize=16384)
def parse_expression(text: str) -> Tree:
    fast = _fast_expression(text)
    return fast if fast is not None else _parse(text, "start_expression")


@lru_cache(maxsize=16384)
def parse_unary_tests(text: str) -> Tree:
    fast = _fast_unary_tests(text)
    return fast if fast is not None else _parse(text, "start_unary_tests")


# ---------------------------------------------------------------- the fast path
# Most table cells are a literal, a comparison with one, a numeric range or a list of strings. They
# are read here into the very trees the grammar gives, so a large table deploys and first runs fast
# (the Earley parser costs milliseconds a cell). Anything else goes to the grammar.

_VALUE = re.compile(r'\s*(?:(?P<num>-?(?:\d+(?:\.\d+)?|\.\d+))(?!\w)(?!\.(?!\.))|(?P<str>"[^"\\\n]*")'
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)(?![\w?'\s]*(?:[\w?'(\[]|\.(?!\.))))")
_CMP = re.compile(r"\s*(<=|>=|!=|<|>|=)")
_RANGE = re.compile(r"\s*([\[\](])")
_RANGE_END = re.compile(r"\s*([\[\])])")
_DOTS = re.compile(r"\s*\.\.")
_COMMA = re.compile(r"\s*,")


def _value_at(text: str, pos: int) -> tuple[Tree, int] | None:
    m = _VALUE.match(text, pos)
    if not m:
        return None
    if m.group("num") is not None:
        raw = m.group("num")
        tree = Tree("number", [Token("NUMBER", raw.lstrip("-"))])
        return (Tree("neg", [tree]) if raw.startswith("-") else tree), m.end()
    if m.group("str") is not None:
        return Tree("string", [Token("STRING", m.group("str"))]), m.end()
    word = m.group("word")
    if word in ("true", "false", "null"):
        return Tree(word, []), m.end()
    if word in KEYWORDS or word == "not" or any(n.startswith(word + " ") for n in SPECIAL_NAMES):
        return None
    return Tree("var", [Tree("name", [Token("WORD", word)])]), m.end()


def _fast_expression(text: str) -> Tree | None:
    found = _value_at(text, 0)
    if found is None or text[found[1]:].strip():
        return None
    return found[0]


def _test_at(text: str, pos: int) -> tuple[Tree, int] | None:
    m = _CMP.match(text, pos)
    if m:
        found = _value_at(text, m.end())
        return (Tree("compare_test", [Token("CMP_OP", m.group(1)), found[0]]), found[1]) if found else None
    m = _RANGE.match(text, pos)
    if m:
        low = _value_at(text, m.end())
        dots = _DOTS.match(text, low[1]) if low else None
        high = _value_at(text, dots.end()) if dots else None
        end = _RANGE_END.match(text, high[1]) if high else None
        if end is None:
            return None
        return Tree("range", [Token("RANGE_START", m.group(1)), low[0], high[0],
                              Token("RANGE_END", end.group(1))]), end.end()
    return _value_at(text, pos)


_NOT = re.compile(r"^\s*not\s*\((.*)\)\s*$", re.DOTALL)


def _fast_unary_tests(text: str) -> Tree | None:
    if text.strip() == "-":
        return Tree("any_input", [Token("DASH_ONLY", "-")])
    negated = _NOT.match(text)
    if negated:
        inner = _fast_unary_tests(negated.group(1))
        if inner is None or inner.data != "tests":
            return None
        return Tree("tests", [Tree("not_call", [Token("NOT_CALL", "not("), Tree("unary_tests_inner", inner.children)])])
    tests, pos = [], 0
    while True:
        found = _test_at(text, pos)
        if found is None:
            return None
        tests.append(found[0])
        pos = found[1]
        comma = _COMMA.match(text, pos)
        if comma is None:
            break
        pos = comma.end()
    return Tree("tests", tests) if not text[pos:].strip() else None


def _parse(text: str, start: str) -> Tree:
    if not text.strip():
        raise FeelSyntaxError(text, "the expression is empty")
    try:
        return _parser().parse(text, start=start)
    except LarkError as exc:
        message, column = _describe(exc)
        raise FeelSyntaxError(text, message, column) from None
