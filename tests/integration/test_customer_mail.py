"""Customer e-mails through a real SMTP server (aiosmtpd): the acknowledgement with the reference,
the final reply with a signed survey link, and the public survey page that stores the answer."""

from __future__ import annotations

import re

import time_machine

from engine.customer_mail import notify_customers
from engine.mailer import SmtpConfig
from engine.notifications import deliver_outbox
from tests.integration.test_scheduler_mail import smtp  # noqa: F401  (fixture)
from tests.service.helpers_process_library import (
    COMPLAINT,
    INTAKE,
    LEAD,
    OWNERS,
    PROCESSES,
    SERVICE,
    START,
    Driver,
    ack,
    add_owners,
    analyse,
    check,
    do_action,
    final_reply,
    fire_timers,
    owner,
    plan_answers,
    reply,
    standardise,
    triage,
)
from web import create_app

SECRET = "test-secret-for-links"


def _plain(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


def _deliver(db, config: SmtpConfig) -> None:
    result = deliver_outbox(db, "w1", config)
    assert result.failed == 0


def test_customer_gets_acknowledgement_final_reply_and_answers_the_survey(runtime, db, smtp, tmp_path):  # noqa: F811
    collector, _, config = smtp
    runtime.deploy_paths([PROCESSES])
    add_owners(db)
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": SECRET, "TESTING": True,
                      "INSTANCE_DIR": str(tmp_path)})
    client = app.test_client()
    with time_machine.travel(START, tick=True) as clock:
        d = Driver(runtime, runtime.start("complaint_to_improvement", {**COMPLAINT, "reference": "C-2026-00042"},
                                          INTAKE, business_key="C-2026-00042"))
        assert notify_customers(db, key=SECRET) == 1
        assert notify_customers(db, key=SECRET) == 0  # once per case
        _deliver(db, config)
        [(rcpts, ack_mail)] = collector.messages
        assert rcpts == ["maria@example.org"]
        assert "C-2026-00042" in ack_mail["Subject"] and "C-2026-00042" in _plain(ack_mail)
        # the one automatic acknowledgement says what happens next and links the status page
        assert "What happens next" in _plain(ack_mail)
        assert "/status?reference=C-2026-00042" in _plain(ack_mail)

        d.complete("acknowledge", SERVICE, ack())
        d.complete("triage", LEAD, triage(True, False, False, "cosmetic", 1, "delivery", ""))
        d.complete("reply", SERVICE, reply())
        d.complete("rca_analyse", LEAD, analyse())
        d.complete("rca_plan", LEAD, plan_answers([("Fix it", OWNERS[0], "2026-06-30")]))
        d.complete("rca_do_action", owner(OWNERS[0]), do_action())
        assert fire_timers(runtime, clock) == 1
        d.complete("rca_check", LEAD, check(recurred=False))
        d.complete("standardise", LEAD, standardise())
        d.complete("send_final_reply", SERVICE, final_reply())
        # the personal acknowledgement (sent by e-mail), the interim reply and the final reply, each once
        assert notify_customers(db, key=SECRET) == 3
        _deliver(db, config)
        mails = {m["Subject"]: (rcpts, _plain(m)) for rcpts, m in collector.messages[1:]}
        assert set(mails) == {"Your complaint C-2026-00042", "Your complaint C-2026-00042: our reply",
                              "Your complaint C-2026-00042: our final reply"}
        assert all(rcpts == ["maria@example.org"] for rcpts, _ in mails.values())
        # exactly what the employee wrote: no second greeting or signature around it
        assert mails["Your complaint C-2026-00042"][1].strip() == ack()["acknowledgement_message"]
        assert mails["Your complaint C-2026-00042: our reply"][1].strip() == reply()["reply_message"]
        text = mails["Your complaint C-2026-00042: our final reply"][1]
        assert text.startswith(final_reply()["final_reply"])
        link = re.search(r"http://\S+/survey/(\w+)/(\w+)", text)
        assert link and link.group(1) == d.id

        path = f"/survey/{link.group(1)}/{link.group(2)}"
        assert client.get(f"/survey/{d.id}/{'0' * 32}").status_code == 404  # forged signature
        page = client.get(path)
        assert page.status_code == 200 and "How likely are you to recommend us" in page.get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
        assert client.post(path, data={"csat": "4"}).status_code == 400  # no CSRF token
        missing = client.post(path, data={"csrf_token": token, "csat": "4"})
        assert missing.status_code == 422 and "please choose an answer" in missing.get_data(as_text=True)
        done = client.post(path, data={"csrf_token": token, "csat": "5", "nps": "9", "survey_comment": "Quick fix"})
        assert done.status_code == 200 and 'id="thanks"' in done.get_data(as_text=True)
        again = client.get(path)
        assert 'id="closed"' in again.get_data(as_text=True)

    instance = runtime.instance(d.id)
    assert instance.status == "completed"
    assert (instance.data["csat"], instance.data["nps"], instance.data["survey_status"]) == (5, 9, "answered")
    assert [a.actor for a in instance.audit if a.type == "complete"][-1] == "customer"


def test_one_address_gets_at_most_three_acknowledgements_a_day(runtime, db, smtp, tmp_path):  # noqa: F811
    """The public form names any address: past the per-recipient limit the complaint is still filed,
    its acknowledgement is withheld (recorded in the outbox and the case's audit), never sent."""
    from sqlalchemy import select

    from storage.models import AuditEvent
    from storage.scheduling import NotificationOutbox
    from tests.integration.test_complaint_intake import GOOD

    collector, _, config = smtp
    runtime.deploy_paths([PROCESSES])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": SECRET, "TESTING": True,
                      "INSTANCE_DIR": str(tmp_path), "COMPLAINT_LIMIT": (100, 600.0)})
    client = app.test_client()
    with time_machine.travel(START, tick=True) as clock:
        # the same victim, written five ways (case does not make it another address), and one other customer
        victims = ["victim@example.org", "Victim@Example.org", "VICTIM@example.org", "victim@example.org",
                   "victim@EXAMPLE.ORG"]
        references = [client.post("/api/v1/complaints", json={**GOOD, "customer_email": to}).get_json()["reference"]
                      for to in victims]
        assert client.post("/api/v1/complaints", json={**GOOD, "customer_email": "other@example.org"}).status_code == 201
        assert notify_customers(db, key=SECRET) == 4  # three for the victim, one for the other customer
        _deliver(db, config)
        received = sorted(rcpt.lower() for rcpts, _ in collector.messages for rcpt in rcpts)
        assert received == ["other@example.org"] + ["victim@example.org"] * 3
        with db.read() as s:
            withheld = s.execute(select(NotificationOutbox.instance_id, NotificationOutbox.last_error)
                                 .where(NotificationOutbox.state == "withheld")).all()
            audited = set(s.scalars(select(AuditEvent.instance_id).where(AuditEvent.type == "acknowledgement_withheld")))
        assert len(withheld) == 2 and all("3 acknowledgements" in error for _, error in withheld)
        assert audited == {instance_id for instance_id, _ in withheld}
        assert len(set(references)) == 5  # every complaint was filed all the same

        clock.shift(24 * 3600 + 60)  # a day later the address may be acknowledged again
        client.post("/api/v1/complaints", json={**GOOD, "customer_email": "victim@example.org"})
        assert notify_customers(db, key=SECRET) == 1


def test_plus_addressing_and_case_make_no_other_recipient(runtime, db, smtp, tmp_path):  # noqa: F811
    """`Anna+1@Example.com` reaches anna@example.com: it counts against her limit (mail still goes to
    the address as written); another local part is another recipient."""
    from sqlalchemy import select

    from storage.scheduling import NotificationOutbox
    from tests.integration.test_complaint_intake import GOOD

    collector, _, config = smtp
    runtime.deploy_paths([PROCESSES])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": SECRET, "TESTING": True,
                      "INSTANCE_DIR": str(tmp_path), "COMPLAINT_LIMIT": (100, 600.0)})
    client = app.test_client()
    addresses = ["anna+1@example.com", "Anna+shop@Example.com", "ANNA@example.com", "anna+x+y@example.com",
                 "anna.b@example.com"]
    for to in addresses:
        assert client.post("/api/v1/complaints", json={**GOOD, "customer_email": to}).status_code == 201
    assert notify_customers(db, key=SECRET) == 4  # three for anna, one for anna.b
    _deliver(db, config)
    received = sorted(rcpt for rcpts, _ in collector.messages for rcpt in rcpts)
    assert received == sorted(["anna+1@example.com", "Anna+shop@Example.com", "ANNA@example.com",
                               "anna.b@example.com"])
    with db.read() as s:
        withheld = s.scalars(select(NotificationOutbox.address).where(NotificationOutbox.state == "withheld")).all()
    assert withheld == ["anna+x+y@example.com"]
