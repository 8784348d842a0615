"""ISO 9001 evidence report (quality leads, admins): printable HTML with §9.1.2 customer
satisfaction figures and trend and §10.2 every nonconformity with its actions, owners, dates,
effectiveness and audit trail, for the dashboard's period and filters."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import login_required

from engine import clock
from engine.kpi_labels import dashboard_labels
from engine.kpis import compute, nonconformity_report, refreshed_at, satisfaction_trend
from web.case_values import actor_name, status_name
from web.context import database, lead_required, runtime
from web.dashboard import charts, kpi_query, label

bp = Blueprint("reports", __name__)


@bp.get("/reports/iso9001")
@login_required
@lead_required
def iso9001() -> Any:
    q = kpi_query()
    k = compute(database(), q)
    labels = dashboard_labels(runtime())
    return render_template("dashboard_iso9001.html", k=k, q=q, args=q.args(), charts=charts(k, labels),
                           labels=labels, label=label,
                           trend=satisfaction_trend(database(), q), report=nonconformity_report(database(), q),
                           generated_at=clock.now(), refreshed_at=refreshed_at(database()), person=actor_name,
                           status_name=status_name)
