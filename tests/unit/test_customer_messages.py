"""What the customer receives: the one automatic acknowledgement (what happens next, the status
link), and the messages a step's form carries, exactly as written (escaped in the HTML part); a
personal acknowledgement given by phone or letter is a record, not a mail. `${name}` templates fill
in variables and never evaluate anything."""

from __future__ import annotations

from engine.customer_mail import _mails, status_link
from engine.placeholders import fill, has_placeholders

CONTEXT = {"name": "Ann", "product": "Kettle", "reference": "C-2026-000007",
           "status_link": status_link("C-2026-000007")}


def test_acknowledgement_says_what_happens_next_and_links_the_status_page():
    [(kind, subject, text, html)] = _mails("start", {}, CONTEXT, "i1", "k")
    assert kind == "customer_acknowledgement" and subject == "We received your complaint C-2026-000007"
    assert "What happens next" in text and "/status?reference=C-2026-000007" in text
    assert 'href="http' in html and "/status?reference=C-2026-000007" in html


def test_messages_are_sent_exactly_as_written():
    message = "Dear Ann,\n\nwe <b>replaced</b> the kettle & more.\n\nKind regards\nCustomer service"
    [(kind, subject, text, html)] = _mails("complete", {"reply_message": message, "remedy": "replacement"},
                                           CONTEXT, "i1", "k")
    assert (kind, subject, text) == ("customer_reply", "Your complaint C-2026-000007: our reply", message)
    assert "&lt;b&gt;replaced&lt;/b&gt; the kettle &amp; more." in html and "<b>" not in html
    assert html.startswith("<p>Dear Ann,</p>") and "Kind regards<br>Customer service" in html


def test_final_reply_gets_the_survey_link_below_it():
    [(kind, _, text, html)] = _mails("complete", {"final_reply": "Dear Ann,\n\nfixed."}, CONTEXT, "inst1", "k")
    assert kind == "customer_final_reply" and text.startswith("Dear Ann,\n\nfixed.\n\n--\n")
    assert "/survey/inst1/" in text and "/survey/inst1/" in html


def test_acknowledgement_given_by_phone_is_not_mailed():
    by_phone = {"acknowledgement_message": "Dear Ann, as discussed on the phone ...",
                "acknowledgement_channel": "phone"}
    assert _mails("complete", by_phone, CONTEXT, "i1", "k") == []
    by_mail = {**by_phone, "acknowledgement_channel": "email"}
    assert [m[0] for m in _mails("complete", by_mail, CONTEXT, "i1", "k")] == ["customer_personal_message"]
    assert _mails("complete", {"triage_notes": "internal"}, CONTEXT, "i1", "k") == []


def test_templates_fill_variables_and_evaluate_nothing():
    assert fill("Dear ${customer_name}, ref ${ reference }.", {"customer_name": "Ann", "reference": "C-1"}) \
        == "Dear Ann, ref C-1."
    assert fill("${missing}|${__import__}|${1+1}", {}) == "||${1+1}"
    assert has_placeholders("Dear ${customer_name},") and not has_placeholders("Dear customer,")
