"""The case panel's status follows the case: as a complaint goes through triage, containment, the
root-cause analysis, the actions, the effectiveness check and the close, the panel says what the
customer's status page says (status and `customer.stage`), never the process variable left at
"acknowledged" by the step that set it."""

from __future__ import annotations

import re

import time_machine

from engine import clock
from engine.complaint_status import complaint_status
from tests.integration.conftest import login
from tests.service import helpers_process_library as lib


def _panel(client, instance_id: str) -> tuple[str | None, str | None]:
    html = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    panel = html.split('class="data case-values"', 1)[1].split("</dl>", 1)[0]

    def var(name: str) -> str | None:
        found = re.search(rf'data-var="{name}">([^<]*)</dd>', panel)
        return found.group(1) if found else None

    return var("status"), var("stage")


def test_the_panel_follows_the_complaint_to_its_close(client, runtime, complaint_process):
    login(client, "lena.lead")
    owner = lib.owner("rob.reviewer")
    with time_machine.travel(clock.now(), tick=False) as traveller:
        d = lib.Driver(runtime, runtime.start(complaint_process, dict(lib.COMPLAINT, reference="C-2026-07001"),
                                              lib.INTAKE))

        def seen() -> tuple[str | None, str | None]:
            status, stage = _panel(client, d.id)
            public = complaint_status(runtime, complaint_process, "C-2026-07001", lib.COMPLAINT["customer_email"])
            if d.refresh().status != "cancelled":
                assert stage in (None, public["stage"])  # the customer is told the same
            return status, stage

        assert seen() == ("Received", "We have received your complaint. Someone from customer service will "
                                      "contact you personally within one working day.")
        d.complete("acknowledge", lib.SERVICE, lib.ack())
        assert seen() == ("In progress", "We are assessing your complaint.")
        d.complete("triage", lib.LEAD, lib.triage(safety_issue=True))
        status, stage = seen()  # containment and the first reply run side by side
        assert status == "In progress" and "cannot affect other customers" in stage and "preparing our reply" in stage
        d.complete("containment", lib.PRODUCTION, lib.containment())
        d.complete("reply", lib.SERVICE, lib.reply())
        rca = ("In progress", "We are finding the cause of the problem and fixing it, then checking that the fix works.")
        assert seen() == rca
        d.complete("rca_analyse", lib.LEAD, lib.analyse())
        d.complete("rca_plan", lib.LEAD, lib.plan_answers([("Change the motor spec", "rob.reviewer", "2099-06-30")]))
        assert seen() == rca  # the actions
        d.complete("rca_do_action", owner, lib.do_action())
        assert seen() == rca  # waiting for the effectiveness check
        assert lib.fire_timers(runtime, traveller) == 1
        d.complete("rca_check", lib.LEAD, lib.check(recurred=False))
        assert seen() == ("In progress", "We have fixed the cause and are making the change permanent.")
        d.complete("standardise", lib.LEAD, lib.standardise())
        assert seen() == ("In progress", "We are writing our final reply to you.")
        d.complete("send_final_reply", lib.SERVICE, lib.final_reply())
        d.complete("survey", lib.SERVICE, lib.survey())
        assert seen() == ("Closed", "Your complaint is closed.")


def test_a_rejected_complaint_says_so(client, runtime, complaint_process):
    login(client, "lena.lead")
    d = lib.Driver(runtime, runtime.start(complaint_process, dict(lib.COMPLAINT, reference="C-2026-07002"), lib.INTAKE))
    d.complete("acknowledge", lib.SERVICE, lib.ack())
    d.complete("triage", lib.LEAD, lib.triage(valid=False, invalid_reason="Not our product"))
    assert _panel(client, d.id) == ("In progress", "We are writing to you with our decision.")
    d.complete("close_invalid", lib.LEAD, {"invalid_reason": "Not our product (competitor brand)",
                                           "rejected_by": "lena.lead",
                                           "rejection_reply": "The grinder is not one of our products."})
    status, stage = _panel(client, d.id)
    assert status == "Closed: not valid" and stage.startswith("Your complaint is closed. We have written to you")
