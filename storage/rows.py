"""Sending a list of rows: the one rule for how a statement runs once per row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult


def execute_rows(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> CursorResult[Any]:
    """`stmt` once per row, in one call. One row goes as a plain execute: a one-item list would take
    the driver's executemany path (psycopg runs it in pipeline mode), dearer than the statement."""
    return conn.execute(stmt, rows[0] if len(rows) == 1 else rows)
