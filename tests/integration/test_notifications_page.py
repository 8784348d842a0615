"""In-app notifications in the web UI: the bell with the unread count on every signed-in page,
the notifications page (newest first, each linking to its task), mark one / all read by POST
with the CSRF token (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

from engine.notifications import notifications_for, notify_task_events
from tests.integration.conftest import csrf, login, start_review


def _bell(page: str) -> str | None:
    match = re.search(r'id="bell-count">([^<]*)<', page)
    return match.group(1) if match else None


def test_bell_list_and_mark_read(client, db, runtime):
    first = start_review(runtime, "C-51")
    second = start_review(runtime, "C-52")
    notify_task_events(db)  # "a new task for your group", one per task
    login(client, "rita.reviewer")
    for path in ("/inbox", f"/tasks/{first.tasks[0].id}", "/notifications"):
        assert _bell(client.get(path).get_data(as_text=True)) == "2", path

    page = client.get("/notifications").get_data(as_text=True)
    ids = re.findall(r'<li class="notification unread" data-id="(\d+)"', page)
    assert len(ids) == 2 and int(ids[0]) > int(ids[1])  # newest first
    assert page.index(f'/tasks/{second.tasks[0].id}') < page.index(f'/tasks/{first.tasks[0].id}')

    assert client.post(f"/notifications/{ids[0]}/read").status_code == 400  # no CSRF token
    response = client.post(f"/notifications/{ids[0]}/read", data={"csrf_token": csrf(client, "/notifications")})
    assert response.status_code == 302
    page = client.get("/notifications").get_data(as_text=True)
    assert _bell(page) == "1" and f'<li class="notification read" data-id="{ids[0]}"' in page
    assert notifications_for(db, "rita.reviewer")["unread"] == 1

    # someone else's notification cannot be marked by id
    login(client, "rob.reviewer")
    client.post(f"/notifications/{ids[1]}/read", data={"csrf_token": csrf(client, "/notifications")})
    assert notifications_for(db, "rita.reviewer")["unread"] == 1
    assert _bell(client.get("/inbox").get_data(as_text=True)) == "2"  # rob's own two are untouched

    login(client, "rita.reviewer")
    client.post("/notifications/read", data={"csrf_token": csrf(client, "/notifications")})
    page = client.get("/notifications").get_data(as_text=True)
    assert _bell(page) is None and "0 unread" in page and "Mark all read" not in page


def test_notifications_need_sign_in_and_bell_is_for_signed_in_pages(client):
    assert client.get("/notifications").status_code == 302
    assert 'id="bell"' not in client.get("/login").get_data(as_text=True)
