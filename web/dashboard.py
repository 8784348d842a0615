"""KPI dashboard (quality leads, admins): figures for a period and filters — six tiles at a glance with
their change against the previous period (engine/kpis.py `glance`), then SVG charts drawn on the
server (no JavaScript, no CDN) side by side, each with its numbers in a table, a heat map of step
durations on the BPMN diagram (the bpmn-js viewer, the page's only script), and CSV/XLSX exports of
complaints, actions and survey answers. The long form is the ISO 9001 report (web/reports.py)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import login_required
from markupsafe import Markup, escape

from engine.kpi_labels import dashboard_labels
from engine.kpi_rules import HEAT_MAP_PROCESS
from engine.kpis import (
    ACTION_COLUMNS,
    COMPLAINT_COLUMNS,
    SURVEY_COLUMNS,
    KpiQuery,
    KpiQueryError,
    action_rows,
    build_query,
    complaint_rows,
    compute,
    filter_options,
    glance,
    refreshed_at,
    survey_rows,
)
from web.context import database, lead_required, runtime
from web.diagram import definition_diagram

bp = Blueprint("dashboard", __name__)

EXPORTS = {"complaints": (COMPLAINT_COLUMNS, complaint_rows), "actions": (ACTION_COLUMNS, action_rows),
           "surveys": (SURVEY_COLUMNS, survey_rows)}
BLUE, GREEN, RED, GREY, GREY_BLUE = "#2f6db5", "#3d8b4f", "#c0392b", "#888888", "#5b6f8a"


# the period fields of the filter form, for its error summary
FILTER_FIELDS = [{"id": "from", "label": "From", "type": "date"}, {"id": "to", "label": "To", "type": "date"},
                 {"id": "granularity", "label": "Trend", "type": "enum"}]


def kpi_query() -> KpiQuery:
    return build_query(request.args, current_app.config["TIMEZONE"])


# ---------------------------------------------------------------------------------------- SVG charts

def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
                  f'width="100%" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
                  + "".join(body) + "</svg>")


def column_chart(label: str, categories: list[str], series: list[tuple[str, str, list[float]]]) -> Markup:
    """Grouped vertical bars: series = [(name, colour, values per category)]."""
    # narrow drawings with large text: legible on a phone, two side by side on a laptop
    width, height, left, bottom, top = 400, 220, 34, 42, 12
    peak = max([v for _, _, values in series for v in values] + [1])
    plot_w, plot_h = width - left - 8, height - bottom - top
    slot = plot_w / max(len(categories), 1)
    bar = max(slot * 0.8 / max(len(series), 1), 1)
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="{GREY}"/>',
            f'<text x="{left - 4}" y="{top + 8}" font-size="12" text-anchor="end">{peak:g}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" font-size="12" text-anchor="end">0</text>']
    step = max(1, -(-len(categories) // 6))  # at most 6 axis labels
    for i, cat in enumerate(categories):
        x0 = left + i * slot + slot * 0.1
        for j, (name, colour, values) in enumerate(series):
            v = values[i]
            h = plot_h * v / peak
            body.append(f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{colour}"><title>{escape(cat)} {escape(name)}: {v:g}</title></rect>')
        if i % step == 0:
            body.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - bottom + 15}" font-size="12" '
                        f'text-anchor="middle">{escape(cat)}</text>')
    for j, (name, colour, _) in enumerate(series):
        body.append(f'<rect x="{left + j * 100}" y="{height - 14}" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{left + j * 100 + 16}" y="{height - 3}" font-size="13">{escape(name)}</text>')
    return _svg(width, height, label, body)


def bar_chart(label: str, items: list[tuple[str, float]], colour: str = BLUE, unit: str = "") -> Markup:
    """Horizontal bars, one per item."""
    width, row, left = 400, 24, 178
    height = max(len(items), 1) * row + 8
    peak = max([v for _, v in items] + [1])
    body = []
    for i, (name, v) in enumerate(items):
        y = 4 + i * row
        w = (width - left - 72) * (v or 0) / peak
        text = name if len(name) <= 21 else name[:20] + "…"
        body.append(f'<text x="{left - 6}" y="{y + 16}" font-size="13" text-anchor="end">{escape(text)}</text>'
                    f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colour}">'
                    f'<title>{escape(name)}: {v:g}{unit}</title></rect>'
                    f'<text x="{left + w + 4:.1f}" y="{y + 16}" font-size="13">{v:g}{unit}</text>')
    return _svg(width, height, label, body)


def heat_map(key: str, steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The viewer's data for the process diagram with each step tinted by its average duration
    (darker = slower) and labelled with it (web/static/diagram.js draws it)."""
    hours = {s["spec_id"]: s["avg_hours"] for s in steps if s["process_key"] == key and s["avg_hours"] is not None}
    return definition_diagram(key, heat=hours)


def label(labels: dict[str, str], value: str | None) -> str:
    """The name people read for a coded value (a category id, a process key); the value when none."""
    return labels.get(value or "", value or "")


def charts(k: dict[str, Any], labels: dict[str, dict[str, str]] | None = None) -> dict[str, Markup]:
    categories = (labels or {}).get("category", {})
    trend = k["complaints"]["trend"]
    names = [b["start"][5:] if k["period"]["granularity"] == "week" else b["start"][:7] for b in trend]
    sat = k["satisfaction"]
    return {
        "trend": column_chart("Complaints received and closed per " + k["period"]["granularity"], names,
                              [("received", BLUE, [b["received"] for b in trend]),
                               ("closed", GREEN, [b["closed"] for b in trend])]),
        "csat": bar_chart("CSAT distribution", [(f"{s} ★", n) for s, n in sat["csat"]["distribution"].items()]),
        "nps": bar_chart("NPS answers", [("promoters (9–10)", sat["nps"]["promoters"]),
                                         ("passives (7–8)", sat["nps"]["passives"]),
                                         ("detractors (0–6)", sat["nps"]["detractors"])], GREEN),
        "pareto": bar_chart("Complaints per category", [(label(categories, p["category"]), p["count"])
                                                        for p in k["pareto"]]),
        "root_causes": bar_chart("Most frequent root causes", [(r["root_cause"], r["count"])
                                                               for r in k["root_causes"]], GREY_BLUE),
        "steps": bar_chart("Average time per step", [(s["name"], s["avg_hours"]) for s in k["bottlenecks"]
                                                     if s["avg_hours"] is not None][:15], RED, " h"),
    }


# ---------------------------------------------------------------------------------------- pages

@bp.get("/dashboard")
@login_required
@lead_required
def index() -> Any:
    try:
        q, errors = kpi_query(), {}
    except KpiQueryError as exc:  # not a dead end: the form with what was sent, its errors, the default period
        q, errors = build_query({}, current_app.config["TIMEZONE"]), {p["field"]: p["message"] for p in exc.details}
    k = compute(database(), q)
    heat_key = q.process or HEAT_MAP_PROCESS
    labels = dashboard_labels(runtime())
    sent = {name: request.args.get(name, "") for name in ("from", "to")} if errors else {
        "from": q.from_date.isoformat(), "to": q.to_date.isoformat()}
    return render_template("dashboard.html", k=k, q=q, args=q.args(), charts=charts(k, labels),
                           glance=glance(database(), q, k), labels=labels, label=label,
                           heat=heat_map(heat_key, k["bottlenecks"]), heat_key=heat_key, errors=errors, sent=sent,
                           filter_fields=FILTER_FIELDS, options=filter_options(database()),
                           refreshed_at=refreshed_at(database())), 422 if errors else 200


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # no formula injection when a spreadsheet opens the file
    return value


def _rows(what: str, q: KpiQuery) -> tuple[list[str], list[dict[str, Any]]]:
    columns, fetch = EXPORTS[what]
    return columns, fetch(database(), q)


@bp.get("/dashboard/export/<what>.csv")
@login_required
@lead_required
def export_csv(what: str) -> Any:
    if what not in EXPORTS:
        return Response("unknown export", status=404)
    q = kpi_query()
    columns, rows = _rows(what, q)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r[c] is None else _cell(r[c]) for c in columns])
    name = f"{what}_{q.from_date}_{q.to_date}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/dashboard/export.xlsx")
@login_required
@lead_required
def export_xlsx() -> Any:
    from openpyxl import Workbook

    q = kpi_query()
    book = Workbook()
    book.remove(book.active)
    for what in EXPORTS:
        columns, rows = _rows(what, q)
        sheet = book.create_sheet(what)
        sheet.append(columns)
        for r in rows:
            sheet.append([_cell(r[c]) if not isinstance(r[c], datetime) else r[c].replace(tzinfo=None)
                          for c in columns])
    out = io.BytesIO()
    book.save(out)
    return Response(out.getvalue(), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="kpis_{q.from_date}_{q.to_date}.xlsx"'})
