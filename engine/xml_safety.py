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
_NO_DTD = "document type declarations and entities are not allowed in process files"


def parse_stored(xml: str) -> etree._Element:
    """The root of a deployed definition's XML (checked at deploy), read with the same hardened parser."""
    return etree.fromstring(xml.encode("utf-8"), _parser())


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        # Comments and processing instructions carry no meaning for a process; dropping them keeps
        # every node the checks see an element, and a script's text whole.
        remove_comments=True,
        remove_pis=True,
    )


_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
    (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le"),
)


def _declaration_line(content: bytes) -> int | None:
    """Line of a DOCTYPE/ENTITY declaration, also when the file is UTF-16/32 encoded."""
    match = _DOCTYPE.search(content)
    if match:
        return content.count(b"\n", 0, match.start()) + 1
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            text = content.decode(encoding, errors="replace")
            found = re.search(r"<!DOCTYPE|<!ENTITY", text, re.IGNORECASE)
            return text.count("\n", 0, found.start()) + 1 if found else None
    return None


def parse_xml(content: bytes, filename: str,
              max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[etree._Element | None, list[Problem]]:
    """Return (root, problems); root is None when the file must be refused."""
    if len(content) > max_bytes:
        return None, [Problem(filename, None, "file",
                              f"file is {len(content):,} bytes; the limit is {max_bytes:,} bytes")]
    line = _declaration_line(content)
    if line is not None:
        return None, [Problem(filename, line, "DOCTYPE", _NO_DTD)]
    try:
        root = etree.fromstring(content, _parser())
    except (etree.XMLSyntaxError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        if not isinstance(exc, etree.XMLSyntaxError):
            return None, [Problem(filename, None, "xml", f"malformed XML: {exc}")]
        line = exc.lineno if exc.lineno else None
        message = exc.msg if hasattr(exc, "msg") and exc.msg else str(exc)
        # lxml appends "(line N, column M)" to the message; the line is already in the prefix.
        message = re.sub(r",? \(<string>, line \d+\)|, line \d+, column \d+", "", message)
        return None, [Problem(filename, line, "xml", f"malformed XML: {message}")]
    if root is None:
        return None, [Problem(filename, 1, "xml", "the file is empty")]
    # Belt and braces: an encoding the byte scan cannot read (e.g. EBCDIC) may still hide a DTD.
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        return None, [Problem(filename, None, "DOCTYPE", _NO_DTD)]
    if any(not isinstance(node.tag, str) for node in root.iter()):
        return None, [Problem(filename, None, "DOCTYPE", _NO_DTD)]
    return root, []
