"""The construct suite: one small Camunda-Modeler-style model per BPMN/DMN construct in `models/`,
each driven through the REST API (/api/v1) to its end state on SQLite and PostgreSQL.

`flow` is the driver: deploy, start, complete tasks, send messages and signals, move the clock and
run the scheduler's timer pass. Assertions are on what Camunda 7 does with the same model: the
path taken (the `path` variable the models append to, element ids of tasks), which tasks were
cancelled, the variables and the instance status.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import clock
from engine.accounts import save_user
from web import create_app

MODELS = Path(__file__).parent / "models"
PASSWORD = "correct-horse-9"
USERS = {
    "lena.lead": ("quality_lead", ["quality_lead"]),
    "rita.reviewer": ("employee", ["reviewers"]),
}


class Flow:
    """The REST API as a test drives it (every call asserts its expected HTTP status)."""

    def __init__(self, client: Any, runtime: Any) -> None:
        self.client = client
        self.runtime = runtime
        self.headers = self.token("lena.lead")

    def token(self, username: str) -> dict[str, str]:
        response = self.client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['token']}"}

    def call(self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201), headers: dict | None = None,
             **kwargs: Any) -> Any:
        response = self.client.open(path, method=method, headers=headers or self.headers, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, (response.status_code, response.get_data(as_text=True)[:2000])
        return response.get_json()

    # ---- definitions
    def deploy(self, *names: str, expect: int | tuple[int, ...] = (200, 201)) -> Any:
        """Deploy model files from tests/constructs/models (one request, like a modeler's deploy)."""
        data = {"file": [((MODELS / n).open("rb"), n) for n in names]}
        return self.call("POST", "/api/v1/processes", expect, data=data, content_type="multipart/form-data")

    # ---- instances
    def start(self, key: str, variables: dict | None = None, business_key: str | None = None,
              expect: int | tuple[int, ...] = 201) -> dict[str, Any]:
        body: dict[str, Any] = {"data": variables or {}}
        if business_key:
            body["business_key"] = business_key
        started = self.call("POST", f"/api/v1/processes/{key}/instances", expect, json=body)
        return self.instance(started["id"]) if expect == 201 else started

    def instance(self, instance_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/instances/{instance_id}", 200)

    def variables(self, instance_id: str) -> dict[str, Any]:
        return self.instance(instance_id)["data"]

    def status(self, instance_id: str) -> str:
        return self.instance(instance_id)["status"]

    def open_tasks(self, instance_id: str) -> list[dict[str, Any]]:
        return [t for t in self.instance(instance_id)["tasks"] if t["state"] in ("open", "claimed")]

    def task_states(self, instance_id: str) -> dict[str, str]:
        """Element id -> state of the instance's user tasks (the latest row per element)."""
        return {t["spec_id"]: t["state"] for t in self.instance(instance_id)["tasks"]}

    def open_task(self, instance_id: str, element: str) -> dict[str, Any]:
        found = [t for t in self.open_tasks(instance_id) if t["spec_id"] == element]
        assert found, f"no open task {element}; open: {[t['spec_id'] for t in self.open_tasks(instance_id)]}"
        return found[0]

    def complete(self, instance_id: str, element: str, data: dict | None = None,
                 expect: int | tuple[int, ...] = 200) -> Any:
        task = self.open_task(instance_id, element)
        return self.call("POST", f"/api/v1/tasks/{task['id']}/complete", expect, json={"data": data or {}})

    # ---- events
    def message(self, name: str, data: dict | None = None, correlation: str | None = None,
                expect: int | tuple[int, ...] = 200) -> Any:
        body: dict[str, Any] = {"name": name, "data": data or {}}
        if correlation:
            body["correlation"] = correlation
        return self.call("POST", "/api/v1/messages", expect, json=body)

    def signal(self, name: str, data: dict | None = None, expect: int | tuple[int, ...] = 200) -> Any:
        return self.call("POST", "/api/v1/signals", expect, json={"name": name, "data": data or {}})

    def advance(self, **delta: float) -> int:
        """Move the clock and run one scheduler timer pass (the production firing path)."""
        clock.advance(timedelta(**delta))
        return self.runtime.fire_due_timers("construct-suite").fired

    def incidents(self, instance_id: str) -> list[dict[str, Any]]:
        return self.instance(instance_id)["incidents"]


@pytest.fixture
def flow(db, runtime, tmp_path) -> Any:
    for name, (role, groups) in USERS.items():
        save_user(db, name, role, password=PASSWORD, email=f"{name}@example.com", groups=groups)
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "test-secret", "TESTING": True,
                      "INSTANCE_DIR": str(tmp_path)})
    clock.reset()
    try:
        yield Flow(app.test_client(), runtime)
    finally:
        clock.reset()
