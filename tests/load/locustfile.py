"""The scale-out load scenario, run by tests/integration/test_scale_out_load.py as
`locust --headless -f tests/load/locustfile.py` against two `pdcaflow serve` processes.

Four kinds of people, each user on one of the servers (round robin):
- customers file complaints (JSON API and the public form), each from its own loopback address
  (127.x.y.z) as the public does: the per-address complaint limit stays on and is never reached;
- employees list their open tasks over /api/v1, sometimes claim one, and complete it;
- quality leads reassign open tasks to employees and move due dates into the past (escalation);
- a timer starter (a lead) starts instances of a process whose timer comes due two seconds later.

Configuration comes from the environment: PDCAFLOW_LOAD_HOSTS (comma-separated base URLs),
PDCAFLOW_LOAD_PASSWORD, PDCAFLOW_LOAD_OUT (the JSON file written when locust quits). The file holds
what the database check needs (every complaint reference answered 2xx, every task id completed with
200, every timer instance started) and the figures: requests, requests/s, p95, status counts.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
from collections import Counter
from typing import Any

from locust import HttpUser, between, events, task
from requests.adapters import HTTPAdapter

HOSTS = [h.rstrip("/") for h in os.environ.get("PDCAFLOW_LOAD_HOSTS", "http://127.0.0.1:8000").split(",")]
PASSWORD = os.environ.get("PDCAFLOW_LOAD_PASSWORD", "load-test-password")
EMPLOYEES = ["carl.service", "cora.service", "cleo.service", "chad.service"]
LEADS = ["lena.lead", "luis.lead"]
TIMER_PROCESS = "quick_timer"
COMPLAINT_PROCESS = "complaint_to_improvement"

_lock = threading.Lock()
_host_turn = itertools.count()
_address_turn = itertools.count(1)
statuses: Counter[int] = Counter()
complaints: list[str] = []          # references answered 201 (API) or shown on the thanks page (form)
completed: list[str] = []           # task ids whose completion was answered 200
timer_instances: list[str] = []     # instances of TIMER_PROCESS answered 201
past_due: list[str] = []            # task ids a lead moved into the past (answered 200)
errors: list[str] = []              # connection errors and unexpected answers, for the report


def _next_host() -> str:
    return HOSTS[next(_host_turn) % len(HOSTS)]


def _next_address() -> str:
    n = next(_address_turn)  # 127.16.0.1, 127.16.0.2, ...: one address per complaint
    return f"127.{16 + n // 65536}.{n // 256 % 256}.{n % 256 or 1}"


class _FromAddress(HTTPAdapter):
    """Connections from one loopback source address (the whole of 127.0.0.0/8 is this machine)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


@events.request.add_listener
def _count(response: Any = None, exception: Any = None, name: str = "", **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    with _lock:
        statuses[status] += 1
        if exception is not None and not (400 <= status < 500):
            errors.append(f"{name}: {status} {str(exception)[:200]}")


def _expect(response: Any, *ok: int) -> bool:
    """Mark a response as success when its status is one of `ok` (a 409 race is an expected answer)."""
    if response.status_code in ok:
        response.success()
        return True
    response.failure(f"{response.status_code}: {response.error!r}" if response.status_code == 0
                     else f"{response.status_code}: {response.text[:200]}")
    return False


class _Signed(HttpUser):
    abstract = True
    names: list[str] = []  # the accounts this kind of user signs in as (one chosen per user)

    def on_start(self) -> None:
        self.username = random.choice(self.names)
        self.base = _next_host()
        with self.client.post(f"{self.base}/api/v1/auth/token", name="POST /auth/token",
                              json={"username": self.username, "password": PASSWORD}, catch_response=True) as r:
            _expect(r, 200)
            self.headers = {"Authorization": f"Bearer {r.json()['token']}"} if r.status_code == 200 else {}

    def api(self, method: str, path: str, name: str, ok: tuple[int, ...], **kwargs: Any) -> Any:
        with self.client.request(method, f"{self.base}/api/v1{path}", name=name, headers=self.headers,
                                 catch_response=True, **kwargs) as r:
            return r.json() if _expect(r, *ok) and r.status_code < 300 else None


class Customer(HttpUser):
    weight = 3
    wait_time = between(0.2, 0.8)

    def on_start(self) -> None:
        self.base = _next_host()

    def _from_new_address(self) -> None:
        old = self.client.adapters.get("http://")
        self.client.mount("http://", _FromAddress(_next_address()))
        self.client.cookies.clear()
        if old is not None:
            old.close()

    def _complaint(self) -> dict[str, str]:
        n = random.randrange(10**6)
        return {"customer_name": f"Load Customer {n}", "customer_email": f"customer{n}@example.com",
                "product": random.choice(["Pump P-200", "Valve V-10", "Sensor S-3"]),
                "description": f"The device stopped working after {n % 30 + 1} days of normal use."}

    @task(3)
    def complain_api(self) -> None:
        self._from_new_address()
        with self.client.post(f"{self.base}/api/v1/complaints", json=self._complaint(),
                              name="POST /api/v1/complaints", catch_response=True) as r:
            if _expect(r, 201):
                with _lock:
                    complaints.append(r.json()["reference"])

    @task(1)
    def complain_form(self) -> None:
        self._from_new_address()
        with self.client.get(f"{self.base}/complain", name="GET /complain", catch_response=True) as r:
            match = re.search(r'name="csrf_token" value="([^"]+)"', r.text) if _expect(r, 200) else None
        if match is None:
            return
        form = dict(self._complaint(), csrf_token=match.group(1))
        with self.client.post(f"{self.base}/complain", data=form, name="POST /complain",
                              catch_response=True) as r:  # 303 to the thanks page, which shows the reference
            found = re.search(r"C-\d{4}-\d{6}", r.text) if _expect(r, 200) else None
            if found is None:
                if r.status_code == 200:
                    r.failure("no reference on the thanks page")
                return
            with _lock:
                complaints.append(found.group(0))


class Employee(_Signed):
    weight = 4
    names = EMPLOYEES
    wait_time = between(0.1, 0.5)

    @task
    def work_a_task(self) -> None:
        tasks = self.api("GET", f"/tasks?state=open&process={COMPLAINT_PROCESS}&limit=20", "GET /api/v1/tasks", (200,))
        mine = self.api("GET", "/tasks?mine=1&state=claimed&limit=20", "GET /api/v1/tasks?mine", (200,)) or []
        todo = [t for t in mine + (tasks or []) if t["spec_id"] == "acknowledge"]
        if not todo:
            return
        chosen = random.choice(todo[:5])  # several employees pick from the same head of the queue: races
        if chosen.get("state") == "open" and random.random() < 0.5:
            if self.api("POST", f"/tasks/{chosen['id']}/claim", "POST /api/v1/tasks/{id}/claim", (200, 403, 409)) is None:
                return
        done = self.api("POST", f"/tasks/{chosen['id']}/complete", "POST /api/v1/tasks/{id}/complete", (200, 403, 409),
                        json={"data": {"acknowledgement_message": "Thank you, we are looking into it.",
                                       "acknowledgement_channel": "email"}})
        if done is not None:
            with _lock:
                completed.append(chosen["id"])


class Lead(_Signed):
    weight = 1
    names = LEADS
    wait_time = between(0.3, 1.0)


    def _open_tasks(self) -> list[dict[str, Any]]:
        return self.api("GET", f"/tasks?state=open&process={COMPLAINT_PROCESS}&limit=50", "GET /api/v1/tasks", (200,)) or []

    @task(3)
    def reassign(self) -> None:
        tasks = self._open_tasks()
        if tasks:
            chosen = random.choice(tasks)
            self.api("POST", f"/tasks/{chosen['id']}/assign", "POST /api/v1/tasks/{id}/assign", (200, 409),
                     json={"assignee": random.choice(EMPLOYEES)})

    @task(1)
    def move_due_date_into_the_past(self) -> None:
        tasks = self._open_tasks()
        if tasks:
            chosen = random.choice(tasks)
            if self.api("POST", f"/tasks/{chosen['id']}/due", "POST /api/v1/tasks/{id}/due", (200, 409),
                        json={"due_at": "2020-01-01T08:00:00+00:00"}) is not None:
                with _lock:
                    past_due.append(chosen["id"])

    @task(3)
    def start_timer(self) -> None:
        started = self.api("POST", f"/processes/{TIMER_PROCESS}/instances", "POST /api/v1/processes/{key}/instances",
                           (201,), json={"data": {}})
        if started is not None:
            with _lock:
                timer_instances.append(started["id"])


@events.quitting.add_listener
def _write_report(environment: Any, **_: Any) -> None:
    out = os.environ.get("PDCAFLOW_LOAD_OUT")
    if not out:
        return
    total = environment.stats.total
    report = {
        "requests": total.num_requests, "failures": total.num_failures,
        "rps": round(total.total_rps, 1), "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95), "max_ms": round(total.max_response_time or 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "status_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "connection_errors": statuses.get(0, 0),
        "per_request": {name: {"n": s.num_requests, "failures": s.num_failures,
                               "p95_ms": s.get_response_time_percentile(0.95)}
                        for (name, _method), s in sorted(environment.stats.entries.items())},
        "complaints": complaints, "completed": completed, "timer_instances": timer_instances,
        "past_due": past_due, "errors": errors[:50],
    }
    with open(out, "w") as f:
        json.dump(report, f)
