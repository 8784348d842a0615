"""Deploying from Camunda Modeler ("Deploy to Camunda 7", endpoint `…/engine-rest`, HTTP Basic) to a
running PDCA Flow over real HTTP, on SQLite and PostgreSQL: the requests the Modeler sends (its
connection check, a multipart deployment whose file field is named after the file, starting the
deployed definition), its parse-error answer, and the definition XML Cockpit-like tools read."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from engine.accounts import save_user
from tests.conftest import serving
from web import create_app

MODELS = Path(__file__).parents[1] / "constructs" / "models"
FIXTURES = Path(__file__).parents[1] / "fixtures"
PASSWORD = "correct-horse-9"
LEAD = ("lena.lead", PASSWORD)


@pytest.fixture
def url(db, runtime, tmp_path):
    save_user(db, "lena.lead", "quality_lead", password=PASSWORD, groups=["quality_lead"])
    save_user(db, "rita.reviewer", "employee", password=PASSWORD, groups=["reviewers"])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "deploy-test", "INSTANCE_DIR": str(tmp_path)})
    with serving(app) as base:
        yield f"{base}/engine-rest"


def _deploy(url: str, *paths: Path, auth=LEAD, **form: str) -> requests.Response:
    """What Camunda Modeler's CamundaAPI.deployDiagram sends: the form fields, then each file in a
    field named after it."""
    data = {"deployment-name": "diagram", "deployment-source": "Camunda Modeler", "enable-duplicate-filtering": "true",
            **form}
    files = [(p.name, (p.name, p.read_bytes(), "text/xml")) for p in paths]
    return requests.post(f"{url}/deployment/create", data=data, files=files, auth=auth,
                         headers={"accept": "application/json"}, timeout=30)


def test_camunda_modeler_checks_the_connection_deploys_and_starts(url, runtime):
    check = requests.get(f"{url}/deployment?maxResults=0", auth=LEAD, timeout=30)
    assert check.status_code == 200 and check.json() == []
    assert requests.get(f"{url}/deployment?maxResults=0", auth=("lena.lead", "wrong"), timeout=30).status_code == 401

    deployed = _deploy(url, FIXTURES / "simple_review.bpmn")
    assert deployed.status_code == 200, deployed.text
    body = deployed.json()
    [definition] = body["deployedProcessDefinitions"].values()
    assert definition["key"] == "simple_review" and definition["version"] == 1
    assert body["name"] == "diagram" and body["source"] == "Camunda Modeler"
    assert definition["deploymentId"] == body["id"] and body["links"][0]["href"].endswith(f"/deployment/{body['id']}")
    # the Modeler then starts the deployed definition by its id
    started = requests.post(f"{url}/process-definition/{definition['id']}/start", auth=LEAD, timeout=30,
                            json={"businessKey": "M-1", "variables": {"note": {"value": "hi", "type": "String"}}})
    assert started.status_code == 200, started.text
    instance = runtime.instance(started.json()["id"])
    assert instance.business_key == "M-1" and instance.data["note"] == "hi" and instance.version == 1

    # deploying the same file again deploys nothing new, and still names the current definition
    again = _deploy(url, FIXTURES / "simple_review.bpmn").json()
    assert [d["version"] for d in again["deployedProcessDefinitions"].values()] == [1]
    changed = (FIXTURES / "simple_review.bpmn").read_bytes().replace(b'name="Assess request"', b'name="Assess it"')
    third = requests.post(f"{url}/deployment/create", auth=LEAD, timeout=30,
                          files=[("simple_review.bpmn", ("simple_review.bpmn", changed, "text/xml"))]).json()
    assert [d["version"] for d in third["deployedProcessDefinitions"].values()] == [2]
    listed = requests.get(f"{url}/deployment", auth=LEAD, timeout=30).json()
    assert [d["id"] for d in listed] == ["simple_review:2", "simple_review:1"]

    xml = requests.get(f"{url}/process-definition/key/simple_review/xml", auth=LEAD, timeout=30).json()
    assert xml["id"] == "simple_review:2" and 'name="Assess it"' in xml["bpmn20Xml"]
    first = requests.get(f"{url}/process-definition/simple_review:1/xml", auth=LEAD, timeout=30).json()
    assert 'name="Assess request"' in first["bpmn20Xml"]
    # Camunda's answers: an unknown id is a bad request, an unknown key not found
    unknown = requests.get(f"{url}/process-definition/simple_review:9/xml", auth=LEAD, timeout=30)
    assert unknown.status_code == 400 and unknown.json()["message"] == "No matching definition with id simple_review:9"
    missing = requests.get(f"{url}/process-definition/key/nope/xml", auth=LEAD, timeout=30)
    assert missing.status_code == 404 and "key: nope" in missing.json()["message"]
    # a model holds scripts and connector settings: not an employee's to read, nor the deployments
    employee = ("rita.reviewer", PASSWORD)
    assert requests.get(f"{url}/process-definition/key/simple_review/xml", auth=employee, timeout=30).status_code == 403
    assert requests.get(f"{url}/deployment", auth=employee, timeout=30).status_code == 403
    one = requests.get(f"{url}/deployment/simple_review:1", auth=LEAD, timeout=30)
    assert one.status_code == 200 and one.json()["name"] == "simple_review.bpmn"
    assert requests.get(f"{url}/deployment/nope:1", auth=LEAD, timeout=30).status_code == 404
    assert [d["id"] for d in requests.get(f"{url}/deployment?id=simple_review:1", auth=LEAD, timeout=30).json()] == \
        ["simple_review:1"]


def test_a_process_and_its_decision_deploy_together(url):
    body = _deploy(url, MODELS / "dmn_unique.dmn", MODELS / "dmn_unique.bpmn").json()
    [process] = body["deployedProcessDefinitions"].values()
    assert process["key"] == "dmn_unique" and body["id"] == process["deploymentId"]  # the process's, not a decision's
    decisions = list(body["deployedDecisionDefinitions"].values())
    assert decisions and all(d["resource"] == "dmn_unique.dmn" for d in decisions)
    # a decision has no BPMN XML
    key = decisions[0]["key"]
    assert requests.get(f"{url}/process-definition/key/{key}/xml", auth=LEAD, timeout=30).status_code == 404


def test_a_model_we_cannot_run_answers_cammundas_parse_error_and_deploys_nothing(url, runtime):
    refused = _deploy(url, MODELS / "dep_refused.bpmn", FIXTURES / "simple_review.bpmn")
    assert refused.status_code == 400
    body = refused.json()
    # the prefix Camunda Modeler recognises as "could not parse the diagram"; every problem listed
    assert body["type"] == "ParseException"
    assert body["message"].startswith("ENGINE-09005 Could not parse BPMN process. Errors: \n* ")
    java_line = next(i for i, line in enumerate((MODELS / "dep_refused.bpmn").read_text().splitlines(), 1)
                     if 'id="java"' in line)
    assert f"| resource dep_refused.bpmn | line {java_line} | element serviceTask java" in body["message"]
    errors = body["details"]["dep_refused.bpmn"]["errors"]
    java = next(e for e in errors if e["mainElementId"] == "java")
    assert java["line"] == java_line and "camunda:type=\"external\"" in java["message"]
    assert "simple_review.bpmn" not in body["details"]
    assert runtime.definitions_list() == []  # nothing was deployed, not even the good file


def test_a_page_of_another_site_cannot_deploy_with_the_browsers_credentials(url, runtime):
    assert _deploy(url, FIXTURES / "simple_review.bpmn").status_code == 200  # the Modeler (no browser headers)
    crafted = requests.post(f"{url}/deployment/create", auth=LEAD, timeout=30,
                            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
                            files=[("x.bpmn", ("x.bpmn", (FIXTURES / "simple_review.bpmn").read_bytes()
                                               .replace(b"Assess request", b"Evil"), "text/xml"))])
    assert crafted.status_code == 403
    assert [d["version"] for d in runtime.definitions_list()] == [1]


def test_only_quality_leads_and_admins_deploy(url, runtime):
    denied = _deploy(url, FIXTURES / "simple_review.bpmn", auth=("rita.reviewer", PASSWORD))
    assert denied.status_code == 403 and denied.json()["type"] == "AuthorizationException"
    empty = requests.post(f"{url}/deployment/create", auth=LEAD, data={"deployment-name": "x"}, timeout=30)
    assert empty.status_code == 400 and "No deployment resources" in empty.json()["message"]
    tenant = _deploy(url, FIXTURES / "simple_review.bpmn", **{"tenant-id": "acme"})
    assert tenant.status_code == 400 and "tenant" in tenant.json()["message"]
    assert runtime.definitions_list() == []
