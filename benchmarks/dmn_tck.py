"""`pdcaflow bench dmn-tck --path DIR`: run the DMN TCK's test cases against engine/dmn.

DIR is a TCK test-case folder such as TestCases/compliance-level-2 of the public dmn-tck/tck
repository (not shipped here). Each sub-folder holds DMN model(s) and `*-test-*.xml` files listing
input values and the expected result of named decisions; every expected result is one test result
(as the TCK counts them). Numbers compare to 12 significant digits, as the TCK's expected values are
written rounded. A result node marked errorResult passes with a null result or an evaluation error
(FEEL's errors are null values).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from engine.dmn import DecisionEvaluationError, Definitions, evaluate_decision, parse_definitions
from engine.dmn.feel_values import FeelError, parse_date, parse_date_time, parse_duration, parse_time

XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _read_value(el: Any) -> Any:
    """A TCK `value`-like element (value, expected, component, item) → FEEL value."""
    if el.get(XSI + "nil") == "true":
        return None
    children = [c for c in el if _local(c)]
    components = [c for c in children if _local(c) == "component"]
    if components:
        return {c.get("name"): _read_value(c) for c in components}
    lists = [c for c in children if _local(c) == "list"]
    if lists:
        return [_read_value(item) for item in lists[0] if _local(item) == "item"]
    values = [c for c in children if _local(c) == "value"]
    if values:
        return _read_value(values[0])
    text = el.text or ""
    kind = (el.get(XSI + "type") or "").split(":")[-1]
    if kind in ("decimal", "double", "integer", "int", "long", "float"):
        return Decimal(text.strip())
    if kind == "boolean":
        return text.strip() == "true"
    if kind == "date":
        return parse_date(text)
    if kind == "dateTime":
        return parse_date_time(text)
    if kind == "time":
        return parse_time(text)
    if kind == "duration":
        return parse_duration(text)
    return text


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Decimal):
        if not isinstance(actual, Decimal):
            return False
        if actual == expected:
            return True
        scale = max(abs(expected), Decimal(1))
        return abs(actual - expected) <= scale * Decimal("1e-12")
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and set(actual) == set(expected) and all(
            _same(actual[k], expected[k]) for k in expected)
    if isinstance(expected, timedelta) or expected is None:
        return actual == expected
    return type(actual) is type(expected) and actual == expected


def _models(folder: Path) -> Definitions:
    merged = Definitions()
    for path in sorted(folder.glob("*.dmn")):
        model = parse_definitions(path.read_bytes())
        merged.decisions.update(model.decisions)
        merged.inputs.update(model.inputs)
        merged.knowledge.update(model.knowledge)
    return merged


def run_case_folder(folder: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    try:
        definitions = _models(folder)
        model_error = ""
    except Exception as exc:  # noqa: BLE001 - a model we cannot read fails all of its tests
        definitions, model_error = Definitions(), f"model: {exc}"
    for test_file in sorted(folder.glob("*-test-*.xml")):
        root = etree.parse(str(test_file)).getroot()
        for case in (c for c in root if _local(c) == "testCase"):
            try:
                inputs = {n.get("name"): _read_value(n) for n in case if _local(n) == "inputNode"}
                case_error = model_error
            except (FeelError, ArithmeticError, ValueError) as exc:  # a value this runner cannot read
                inputs, case_error = {}, f"input: {exc}"
            for node in (n for n in case if _local(n) == "resultNode"):
                name = node.get("name")
                outcome = {"folder": folder.name, "case": case.get("id"), "decision": name, "passed": False}
                try:
                    expected_el = next((c for c in node if _local(c) == "expected"), None)
                    expected = _read_value(expected_el) if expected_el is not None else None
                except (FeelError, ArithmeticError, ValueError) as exc:
                    outcome["error"] = f"expected value: {exc}"
                    results.append(outcome)
                    continue
                error_expected = node.get("errorResult") == "true"
                if case_error:
                    outcome["error"] = case_error
                    results.append(outcome)
                    continue
                try:
                    actual = evaluate_decision(definitions, name, inputs).value
                    # FEEL's errors are null: an expected error is met by a null result
                    outcome["passed"] = _same(actual, expected) and (not error_expected or actual is None)
                    if not outcome["passed"]:
                        outcome["error"] = f"expected {expected!r}, got {actual!r}"
                except (DecisionEvaluationError, FeelError) as exc:
                    outcome["passed"] = error_expected or expected is None
                    if not outcome["passed"]:
                        outcome["error"] = str(exc)
                except RecursionError:
                    outcome["error"] = "recursion too deep"
                results.append(outcome)
    return results


def run_tck(path: str | Path) -> dict[str, Any]:
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of TCK test cases")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and list(p.glob("*.dmn")))
    results = [r for folder in folders for r in run_case_folder(folder)]
    passed = sum(r["passed"] for r in results)
    return {
        "path": str(root),
        "test_cases": len(folders),
        "results": len(results),
        "passed": passed,
        "pass_rate": round(passed / len(results), 4) if results else 0.0,
        "failures": [r for r in results if not r["passed"]],
    }
