"""Who may see an instance (DESIGN §8): quality leads and admins; an employee only when they may see
one of its tasks or worked on one; everyone else gets 404, for reading and acting alike."""

from __future__ import annotations

from tests.integration.conftest import lead_actor, login, post, start_review, token


def test_employee_sees_an_instance_only_through_its_tasks(client, runtime):
    instance = start_review(runtime)
    otto, rita = token(client, "otto.outsider"), token(client, "rita.reviewer")
    assert client.get(f"/api/v1/instances/{instance.id}", headers=rita).status_code == 200  # task of her group
    assert client.get(f"/api/v1/instances/{instance.id}", headers=token(client, "ada.admin")).status_code == 200
    response = client.get(f"/api/v1/instances/{instance.id}", headers=otto)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    login(client, "otto.outsider")
    assert client.get(f"/instances/{instance.id}").status_code == 404
    assert post(client, f"/instances/{instance.id}/cancel").status_code == 404  # acting alike: not 403
    assert post(client, f"/instances/{instance.id}/retry").status_code == 404
    assert runtime.instance(instance.id).status == "running"

    # once the task is his, he sees the instance, and may still not cancel it
    runtime.assign(instance.tasks[0].id, lead_actor(), "otto.outsider")
    got = client.get(f"/api/v1/instances/{instance.id}", headers=otto)
    assert got.status_code == 200 and got.get_json()["tasks"][0]["assignee"] == "otto.outsider"
    assert "Assess request" in client.get(f"/instances/{instance.id}").get_data(as_text=True)
    assert post(client, f"/instances/{instance.id}/cancel").status_code == 403
