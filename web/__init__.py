"""Flask application factory.

The full inbox, process admin and API arrive with the web issue; until then the app serves a
status page (deployed processes, open tasks) and a health check, so `make run` shows something real.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template_string

from engine.runtime import Runtime
from storage.db import DEFAULT_INSTANCE_DIR, Database

STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>PDCA Flow</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}</style>
</head><body>
<h1>PDCA Flow</h1>
<p>Customer complaints to measured improvements. The task inbox is coming with the web release;
the engine, database and scheduler are running.</p>
<h2>Deployed processes</h2>
<table><tr><th>Key</th><th>Name</th><th>Version</th></tr>
{% for d in definitions %}<tr><td>{{ d.key }}</td><td>{{ d.name or '' }}</td><td>v{{ d.version }}</td></tr>
{% else %}<tr><td colspan="3">None yet: run <code>pdcaflow deploy processes/</code>.</td></tr>{% endfor %}
</table>
<h2>Instances</h2>
<p>{{ instances|length }} most recent instances; {{ running }} running.</p>
</body></html>"""


def _secret_key(instance_dir: Path) -> str:
    key = os.environ.get("PDCAFLOW_SECRET_KEY")
    if key:
        return key
    instance_dir.mkdir(parents=True, exist_ok=True)
    path = instance_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    app = Flask(__name__)
    instance_dir = Path(config.get("INSTANCE_DIR", DEFAULT_INSTANCE_DIR))
    app.config.update(SECRET_KEY=_secret_key(instance_dir), SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", MAX_CONTENT_LENGTH=6 * 1024 * 1024)
    app.config.update(config)
    db = config.get("DATABASE") or Database(config.get("DATABASE_URL"))
    runtime = config.get("RUNTIME") or Runtime(db)
    app.extensions["pdcaflow.runtime"] = runtime

    @app.get("/")
    def index() -> str:
        definitions = [d for d in runtime.definitions_list() if d["kind"] == "bpmn"]
        instances = runtime.instances(limit=100)
        running = sum(1 for i in instances if i["status"] == "running")
        return render_template_string(STATUS_PAGE, definitions=definitions, instances=instances, running=running)

    @app.get("/healthz")
    def healthz() -> Any:
        runtime.definitions_list()
        return jsonify(status="ok")

    return app
