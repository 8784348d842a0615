"""Hardened XML reading for uploaded BPMN/DMN.

A process file comes from a person: it may be huge, declare a DTD (billion laughs) or reference
external entities (XXE). We refuse any DOCTYPE before lxml sees the document, and parse with a
parser that resolves no entities and touches no network, so a hostile file costs nothing.
"""

from __future__ import annotations

import re

from lxml import etree

from engine.errors import Problem

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def parse_xml(content: bytes, filename: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[etree._Element | None, list[Problem]]:
    """Return (root, problems); root is None when the file must be refused."""
    if len(content) > max_bytes:
        return None, [Problem(filename, None, "file", f"file is {len(content):,} bytes; the limit is {max_bytes:,} bytes")]
    match = _DOCTYPE.search(content)
    if match:
        line = content.count(b"\n", 0, match.start()) + 1
        return None, [Problem(filename, line, "DOCTYPE",
                              "document type declarations and entities are not allowed in process files")]
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        message = exc.msg if hasattr(exc, "msg") and exc.msg else str(exc)
        # lxml appends "(line N, column M)" to the message; the line is already in the prefix.
        message = re.sub(r",? \(<string>, line \d+\)|, line \d+, column \d+", "", message)
        return None, [Problem(filename, line, "xml", f"malformed XML: {message}")]
    if root is None:
        return None, [Problem(filename, 1, "xml", "the file is empty")]
    return root, []
