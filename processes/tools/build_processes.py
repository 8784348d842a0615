"""Generate the shipped process library (BPMN + DMN with diagram layout).

Usage (from the repository root):

    python processes/tools/build_processes.py

Edit the descriptions below, re-run, review the diff of the generated files and open
them in Camunda Modeler.  Data names are documented in ``processes/README.md`` -- keep
the two in step.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bpmn_builder import Field, Process, enum  # noqa: E402

OUT = Path(__file__).resolve().parent.parent

CATEGORIES = [
    ("product_quality", "Product quality (defect, damage, wrong part)"),
    ("delivery", "Delivery (late, incomplete, wrong address)"),
    ("service", "Service or staff behaviour"),
    ("billing", "Invoice or price"),
    ("documentation", "Manuals, labels, certificates"),
    ("safety", "Safety of the product"),
    ("other", "Something else"),
]

SEVERITIES = [("critical", "Critical"), ("major", "Major"), ("minor", "Minor")]

# Shared snippet: give a variable a value when the caller did not supply it.
# (Sandboxed Python has no globals()/locals(), so we probe the name.)


def default(name: str, value: str) -> str:
    """Script lines giving ``name`` a value when the caller did not supply it.

    The sandbox has no globals()/locals(): reading an unknown name raises NameError, which
    is caught as Exception (NameError itself is not offered by the sandbox).
    """
    return (
        f"try:\n    {name}\nexcept Exception:\n    {name} = None\n"
        f"if {name} is None or {name} == \"\":\n    {name} = {value}\n"
    )


def reference_script(prefix: str) -> str:
    """Fallback reference (the engine normally passes one): prefix + UTC date and time of receipt.

    Every top-level name a script assigns becomes process data, so no helper variables.
    """
    return default(
        "reference",
        f'"{prefix}-" + received_at[:19].replace("-", "").replace(":", "").replace("T", "-")',
    )


# =====================================================================================
# Shared: root-cause analysis, corrective actions and effectiveness check (8D D4-D7)
# =====================================================================================

def rca_and_corrective_action() -> Process:
    p = Process(
        "rca_and_corrective_action",
        "Root cause, corrective actions and effectiveness check",
        """Shared improvement loop used by complaint and supplier processes (ISO 9001 10.2, 8D D4-D7).
        The quality lead finds the root cause and plans corrective actions, every action owner carries
        out their action, and after a waiting period the quality lead checks whether the problem came
        back. If it did, the analysis is reopened; every round is kept in rca_history.""",
    )
    p.start("rca_start", "Analysis requested", (0, 0),
            "Started by a call activity of a complaint or supplier nonconformity; all caller data is passed in.")
    p.script("rca_init", "Start the analysis", (1, 0),
             "Sets the loop counter, the history and empty answers so every round starts from known data.",
             default("effectiveness_wait", "\"P30D\"") + """
rca_loops = 0
rca_history = []
rca_started_at = now()
effective = None
root_cause = None
problem_statement = ""
why_1 = ""
why_2 = ""
why_3 = ""
why_4 = ""
why_5 = ""
cause_people = ""
cause_machine = ""
cause_method = ""
cause_material = ""
cause_measurement = ""
cause_environment = ""
similar_elsewhere = False
similar_where = ""
success_criteria = ""
""")
    p.xor("rca_round_merge", "", (2, 0), "Joins the first round and every reopened round.")
    p.script("rca_prepare_round", "Prepare the analysis round", (3, 0),
             "Numbers the round and empties the action slots so actions of an earlier round are not "
             "planned twice. The previous analysis answers stay filled in so they can be refined.",
             """
rca_round = rca_loops + 1
action_1_what = ""
action_1_owner = ""
action_1_due = None
action_2_what = ""
action_2_owner = ""
action_2_due = None
action_3_what = ""
action_3_owner = ""
action_3_due = None
action_4_what = ""
action_4_owner = ""
action_4_due = None
""")
    p.user("rca_analyse", "Find the root cause", (4, 0),
           """Quality lead: describe the problem, ask 'why?' up to five times and note possible causes in
           each Ishikawa (fishbone) category. Then write down the root cause you are confident about and
           whether the same weakness can exist in other products, lines or sites.""",
           groups="quality_lead", due="P5D", form=[
               Field("problem_statement", "Problem statement (what, where, when, how many)", required=True,
                     minlength=10),
               Field("why_1", "Why did it happen?", required=True),
               Field("why_2", "Why? (2)"),
               Field("why_3", "Why? (3)"),
               Field("why_4", "Why? (4)"),
               Field("why_5", "Why? (5)"),
               Field("cause_people", "Fishbone - people (training, skills)"),
               Field("cause_machine", "Fishbone - machines and tools"),
               Field("cause_method", "Fishbone - methods and procedures"),
               Field("cause_material", "Fishbone - materials and suppliers"),
               Field("cause_measurement", "Fishbone - measurement and inspection"),
               Field("cause_environment", "Fishbone - environment"),
               Field("root_cause", "Root cause (one or two sentences)", required=True, minlength=5),
               Field("similar_elsewhere", "Could the same problem happen elsewhere?", "boolean",
                     default="false"),
               Field("similar_where", "If yes: where (products, lines, sites)?"),
           ])
    p.user("rca_plan", "Plan the corrective actions", (5, 0),
           """Quality lead: say how you will know the fix worked (success criteria) and list up to four
           corrective actions that remove the root cause. Each action needs a clear description, the user
           name of the person who will do it and a due date. Leave unused slots empty.""",
           groups="quality_lead", due="P2D", form=[
               Field("success_criteria", "Success criteria (measurable, e.g. 'no repeat in 3 months')",
                     required=True, minlength=5),
               Field("action_1_what", "Action 1 - what will be done", required=True),
               Field("action_1_owner", "Action 1 - owner (user name)", required=True),
               Field("action_1_due", "Action 1 - due date", "date", required=True),
               Field("action_2_what", "Action 2 - what will be done (optional)"),
               Field("action_2_owner", "Action 2 - owner (user name)"),
               Field("action_2_due", "Action 2 - due date", "date"),
               Field("action_3_what", "Action 3 - what will be done (optional)"),
               Field("action_3_owner", "Action 3 - owner (user name)"),
               Field("action_3_due", "Action 3 - due date", "date"),
               Field("action_4_what", "Action 4 - what will be done (optional)"),
               Field("action_4_owner", "Action 4 - owner (user name)"),
               Field("action_4_due", "Action 4 - due date", "date"),
           ])
    slots = "\n".join(
        f"""if action_{i}_what:
    actions = actions + [{{"id": str(rca_round) + "-{i}", "round": rca_round, "what": action_{i}_what,
                "owner": {owner}, "due": action_{i}_due or add_duration(today(), "P14D"),
                "done_at": None, "result": ""}}]"""
        for i in range(1, 5)
        for owner in ["action_1_owner" if i == 1 else f"action_{i}_owner or action_1_owner"]
    )
    p.script("rca_build_actions", "List the corrective actions", (6, 0),
             "Turns the filled action slots into the list 'actions' (id, round, what, owner, due, done_at, "
             "result). A slot without owner falls back to the owner of action 1; without due date to 14 days.",
             "actions_planned_at = now()\nactions = []\n" + slots + "\n")
    p.user("rca_do_action", "Carry out the corrective action", (7, 0),
           """Action owner: do the corrective action assigned to you (see 'what' in the action) and record
           the date you finished and what was done, including where the evidence can be found.""",
           assignee="${action.owner}", due="${action.due}", multi=("actions", "action"), form=[
               Field("action.done_at", "Date finished", "date", required=True),
               Field("action.result", "What was done and where is the evidence?", required=True, minlength=3),
           ])
    p.script("rca_actions_done", "Record that all actions are done", (8, 0),
             "Stamps when the last action was finished and when the effectiveness check is due.",
             """
actions_completed_at = now()
effectiveness_due_at = add_duration(actions_completed_at, effectiveness_wait)
""")
    p.timer("rca_wait", "Wait before checking the effect", (9, 0),
            "Waits the time given in effectiveness_wait (ISO 8601 duration, default P30D) so the fix can "
            "prove itself in daily work.", "${effectiveness_wait}")
    p.user("rca_check", "Check whether the fix worked", (10, 0),
           """Quality lead: look at the success criteria, new complaints, inspection and production data
           since the actions were done. Did the problem come back? Were the success criteria met?""",
           groups="quality_lead", due="P3D", form=[
               Field("problem_recurred", "The problem happened again", "boolean", default="false"),
               Field("success_criteria_met", "The success criteria are met", "boolean", default="false"),
               Field("effectiveness_evidence", "Evidence you looked at (data, period, result)", required=True,
                     minlength=5),
           ])
    p.script("rca_record_check", "Record the effectiveness check", (11, 0),
             "Decides 'effective' (no recurrence and criteria met) and appends this round to rca_history.",
             """
effective = bool((not problem_recurred) and success_criteria_met)
effectiveness_checked_at = now()
rca_history = rca_history + [{
    "round": rca_round,
    "problem_statement": problem_statement,
    "why": [why_1, why_2, why_3, why_4, why_5],
    "fishbone": {"people": cause_people, "machine": cause_machine, "method": cause_method,
                 "material": cause_material, "measurement": cause_measurement,
                 "environment": cause_environment},
    "root_cause": root_cause,
    "similar_elsewhere": similar_elsewhere,
    "similar_where": similar_where,
    "success_criteria": success_criteria,
    "actions": actions,
    "problem_recurred": problem_recurred,
    "success_criteria_met": success_criteria_met,
    "effectiveness_evidence": effectiveness_evidence,
    "effective": effective,
    "checked_at": effectiveness_checked_at,
}]
""")
    p.xor("rca_effective_gw", "Fix effective?", (12, 0))
    p.end("rca_end", "Improvement confirmed", (13, 0), "The corrective actions are effective.")
    p.script("rca_reopen", "Reopen the analysis", (12, 1.3),
             "Counts the loop; the next round starts again at the root-cause analysis.",
             "rca_loops = rca_loops + 1\nrca_reopened_at = now()\n")
    p.chain("rca_start", "rca_init", "rca_round_merge", "rca_prepare_round", "rca_analyse", "rca_plan",
            "rca_build_actions", "rca_do_action", "rca_actions_done", "rca_wait", "rca_check",
            "rca_record_check", "rca_effective_gw")
    p.flow("rca_effective_gw", "rca_end", "Yes", "${effective == true}")
    gw, ro = p.nodes["rca_effective_gw"], p.nodes["rca_reopen"]
    p.flow("rca_effective_gw", "rca_reopen", "No, problem not solved", default=True,
           waypoints=[(gw.center[0], gw.center[1] + 25), (ro.center[0], ro.center[1] - 40)])
    p.flow("rca_reopen", "rca_round_merge")
    return p


# =====================================================================================
# Customer complaint -> improvement
# =====================================================================================

def complaint_to_improvement() -> Process:
    p = Process(
        "complaint_to_improvement",
        "Customer complaint to improvement",
        """Handles one customer complaint from receipt to closure (ISO 10002, ISO 9001 9.1.2 and 10.2, 8D):
        acknowledge, triage, severity by decision table, containment in parallel with a reply to the
        customer, root cause and corrective actions with effectiveness check (shared process),
        standardisation, final reply and satisfaction survey. Invalid complaints are closed with the
        reason and the name of the person who decided (FDA 21 CFR 820.198(b)).""",
    )
    p.start("complaint_received", "Complaint received", (0, 0),
            """Started by the public complaint form or by an employee on behalf of the customer. The engine
            passes a unique 'reference'; missing references are generated in the next step.""",
            form=[
                Field("customer_name", "Your name", required=True, maxlength=200),
                Field("customer_email", "Your e-mail address", required=True, maxlength=200),
                Field("product", "Product concerned", required=True, maxlength=200),
                Field("order_ref", "Order or invoice number (if you have it)", maxlength=100),
                Field("description", "What went wrong?", required=True, minlength=10, maxlength=5000),
                Field("desired_outcome", "What would you like us to do?", maxlength=2000),
            ])
    p.script("register", "Register the complaint", (1, 0),
             "Stamps received_at, makes sure there is a reference and sets every recorded value to a known "
             "starting value.",
             "received_at = now()\nstatus = \"received\"\n" + reference_script("CMP")
             + default("order_ref", "\"\"") + default("desired_outcome", "\"\"")
             + default("effectiveness_wait", "\"P30D\"") + """
acknowledged_at = None
closed_at = None
category = None
severity = None
root_cause = None
actions = []
effective = None
rca_loops = 0
rca_history = []
csat = None
nps = None
survey_status = None
""")
    p.user("acknowledge", "Acknowledge the customer", (2, 0),
           """Customer service: within one working day, thank the customer, quote the reference and tell
           them who handles the complaint and when they will hear from us.""",
           groups="customer_service,quality_lead", due="P1D", form=[
               Field("acknowledgement_message", "Message sent to the customer", required=True, minlength=10),
               enum("acknowledgement_channel", "Sent by", [("email", "E-mail"), ("phone", "Phone"),
                                                           ("letter", "Letter")], required=True, default="email"),
           ])
    p.script("record_ack", "Record the acknowledgement", (3, 0),
             "Stamps acknowledged_at.", "acknowledged_at = now()\nstatus = \"acknowledged\"\n")
    p.user("triage", "Triage the complaint", (4, 0),
           """Quality lead: decide whether this is a valid complaint about our product or service, choose
           the category and answer the severity questions. The severity (critical, major, minor) is then
           set by the decision table 'complaint_severity'.""",
           groups="quality_lead", due="P2D", form=[
               enum("category", "Category", CATEGORIES, required=True),
               Field("valid", "This is a valid complaint (untick if not)", "boolean", default="true"),
               Field("invalid_reason", "If not valid: why not?"),
               Field("safety_issue", "Someone could get hurt or a law/regulation is broken", "boolean",
                     default="false"),
               Field("repeat_customer", "This customer complained about the same problem before", "boolean",
                     default="false"),
               enum("customer_impact", "Impact on the customer", [
                   ("unusable", "Product or service cannot be used"),
                   ("degraded", "Usable, but with problems"),
                   ("cosmetic", "Cosmetic or inconvenience only"),
               ], required=True),
               Field("affected_units", "Number of units affected", "long", required=True, default="1", min=0),
               Field("triage_notes", "Notes"),
           ])
    p.xor("valid_gw", "Valid complaint?", (5, 0))
    p.rule("classify", "Set severity", (6, 0),
           "Runs decision table 'complaint_severity' (complaint_severity.dmn) on safety_issue, "
           "repeat_customer, customer_impact and affected_units; the result is stored in 'severity'.",
           "complaint_severity")
    p.par("split", "", (7, 0), "Containment and the reply to the customer run at the same time.")
    p.xor("containment_gw", "Critical or major?", (8, -1))
    p.user("containment", "Contain the problem", (9, -2),
           """Production / quality: stop the problem from reaching more customers now - block stock,
           sort or inspect, replace parts. Record what you did and how many units were affected.""",
           groups="production,quality_lead", due="P1D", form=[
               Field("containment_action", "What did you do to stop the problem spreading?", required=True,
                     minlength=5),
               Field("containment_quantity", "Units blocked, sorted or replaced", "long", default="0", min=0),
               Field("containment_done", "Containment is in place", "boolean", default="true"),
           ])
    p.script("record_containment", "Record the containment", (10, -2),
             "Stamps containment_done_at.", "containment_done_at = now()\n")
    p.script("no_containment", "Note that no containment is needed", (9.5, -1),
             "Minor complaints need no containment; records containment_done = false.",
             "containment_done = False\ncontainment_done_at = None\n")
    p.xor("containment_merge", "", (11, -1))
    p.user("reply", "Reply to the customer", (9, 1),
           """Customer service: tell the customer what we found so far, what we do right now (replacement,
           credit, repair) and when they will hear from us again.""",
           groups="customer_service,quality_lead", due="P2D", form=[
               Field("reply_message", "Message sent to the customer", required=True, minlength=10),
               enum("remedy", "Immediate remedy for the customer", [
                   ("replacement", "Replacement"), ("repair", "Repair"), ("credit", "Credit or refund"),
                   ("none", "None needed"), ("other", "Other")], required=True),
           ])
    p.script("record_reply", "Record the reply", (10, 1), "Stamps replied_at.", "replied_at = now()\n")
    p.par("join", "", (12, 0), "Waits for both containment and the reply.")
    p.call("improve", "Find root cause and fix it", (13, 0),
           "Calls the shared process 'rca_and_corrective_action' (root cause, corrective actions, "
           "effectiveness check, loop until effective).", "rca_and_corrective_action")
    p.user("standardise", "Standardise the improvement", (14, 0),
           """Quality lead: make the fix permanent - update procedures, work instructions and the FMEA,
           train the people involved and write down the lessons learned.""",
           groups="quality_lead", due="P10D", form=[
               Field("procedures_updated", "Procedures or work instructions updated", "boolean",
                     default="false"),
               Field("procedure_refs", "Which documents (number and revision)?"),
               Field("fmea_updated", "FMEA updated", "boolean", default="false"),
               Field("training_done", "People trained", "boolean", default="false"),
               Field("training_notes", "Who was trained on what?"),
               Field("lessons_learned", "Lessons learned", required=True, minlength=5),
           ])
    p.user("send_final_reply", "Send the final reply", (15, 0),
           """Customer service: tell the customer what caused the problem and what we changed so it does
           not happen again. Include the link to the short satisfaction survey.""",
           groups="customer_service,quality_lead", due="P2D", form=[
               Field("final_reply", "Final message sent to the customer", required=True, minlength=10),
           ])
    p.user("survey", "Record the satisfaction survey", (16, 0),
           """Customer service: enter the customer's answers to the survey (or note that they declined or
           did not answer within two weeks).""",
           groups="customer_service,quality_lead", due="P14D", form=[
               enum("survey_status", "Survey result", [("answered", "Customer answered"),
                                                       ("declined", "Customer declined"),
                                                       ("no_response", "No answer within two weeks")],
                    required=True),
               Field("csat", "How satisfied are you with how we handled your complaint? (1 = very "
                     "unsatisfied, 5 = very satisfied)", "long", min=1, max=5),
               Field("nps", "How likely are you to recommend us? (0 = not at all, 10 = extremely likely)",
                     "long", min=0, max=10),
               Field("survey_comment", "Customer's comment"),
           ])
    p.script("close", "Close the complaint", (17, 0),
             "Stamps closed_at. Scores are kept only when the customer answered the survey.",
             """
if survey_status != "answered":
    csat = None
    nps = None
closed_at = now()
status = "closed"
""")
    p.end("closed", "Complaint closed", (18, 0), "Complaint closed after an effective improvement.")
    # Not valid
    p.user("close_invalid", "Close as not valid", (6, 2.2),
           """Quality lead: confirm why this is not a valid complaint (for example not our product, misuse
           already explained, duplicate) and write the message that explains the decision to the customer.
           Your name is recorded as the person who decided.""",
           groups="quality_lead", due="P2D", form=[
               Field("invalid_reason", "Why is this not a valid complaint?", required=True, minlength=5),
               Field("rejected_by", "Your name (person deciding)", required=True),
               Field("rejection_reply", "Message sent to the customer", required=True, minlength=10),
           ])
    p.script("record_rejection", "Record the decision", (7, 2.2),
             "Stamps closed_at and keeps the reason and the decider (FDA 21 CFR 820.198(b)).",
             "closure_reason = invalid_reason\nclosed_at = now()\nstatus = \"rejected\"\n"
             "containment_done = False\ncontainment_done_at = None\nreplied_at = None\n")
    p.end("closed_invalid", "Closed as not valid", (8, 2.2), "Complaint closed without investigation.")

    p.chain("complaint_received", "register", "acknowledge", "record_ack", "triage", "valid_gw")
    p.flow("valid_gw", "close_invalid", "No", "${valid == false}")
    p.flow("valid_gw", "classify", "Yes", default=True)
    p.chain("close_invalid", "record_rejection", "closed_invalid")
    p.chain("classify", "split")
    p.flow("split", "containment_gw")
    p.flow("split", "reply")
    p.flow("containment_gw", "containment", "Yes", '${severity == "critical" || severity eq "major"}')
    p.flow("containment_gw", "no_containment", "No (minor)", default=True)
    p.flow("no_containment", "containment_merge")
    p.chain("containment", "record_containment", "containment_merge", "join")
    p.chain("reply", "record_reply", "join")
    p.chain("join", "improve", "standardise", "send_final_reply", "survey", "close", "closed")
    return p


# =====================================================================================
# Customer feedback (praise, suggestions, survey answers)
# =====================================================================================

def customer_feedback() -> Process:
    p = Process(
        "customer_feedback",
        "Customer feedback",
        """Positive or neutral feedback, suggestions and survey answers are routed to the team they concern,
        which sends a short personal response. Every item is counted in the KPIs (ISO 9001 9.1.2).
        Feedback that turns out to be a complaint is handed over to complaint handling.""",
    )
    p.start("feedback_received", "Feedback received", (0, 0),
            "Started by the public feedback form, a survey import or an employee.", form=[
                enum("feedback_type", "Type of feedback", [
                    ("praise", "Praise"), ("suggestion", "Suggestion"), ("neutral", "General remark"),
                    ("survey_answer", "Survey answer")], required=True),
                Field("customer_name", "Your name", required=True, maxlength=200),
                Field("customer_email", "Your e-mail address", maxlength=200),
                Field("product", "Product or service concerned", maxlength=200),
                Field("message", "Your feedback", required=True, minlength=2, maxlength=5000),
                Field("csat", "How satisfied are you? (1-5)", "long", min=1, max=5),
                Field("nps", "How likely are you to recommend us? (0-10)", "long", min=0, max=10),
            ])
    p.script("fb_register", "Register the feedback", (1, 0),
             "Stamps received_at, makes sure there is a reference and known starting values.",
             "received_at = now()\nstatus = \"received\"\n" + reference_script("FB")
             + default("csat", "None") + default("nps", "None") + default("product", "\"\"")
             + default("customer_email", "\"\"") + """
category = None
responded_at = None
closed_at = None
""")
    p.user("route", "Route the feedback", (2, 0),
           """Customer service: choose the team the feedback is about and the category. If the customer is
           actually unhappy and expects us to fix something, tick 'This is a complaint'.""",
           groups="customer_service", due="P1D", form=[
               enum("responsible_team", "Team that should respond", [
                   ("customer_service", "Customer service"), ("sales", "Sales"), ("production", "Production"),
                   ("logistics", "Logistics"), ("quality_lead", "Quality")], required=True),
               enum("category", "Category", CATEGORIES, required=True),
               Field("is_complaint", "This is a complaint", "boolean", default="false"),
           ])
    p.xor("complaint_gw", "Is it a complaint?", (3, 0))
    p.user("respond", "Respond to the customer", (4, 0),
           """Responsible team: send the customer a short, personal response (thank them, say what you will
           do with a suggestion). Note any improvement idea so it is not lost.""",
           groups="${responsible_team}", due="P3D", form=[
               Field("response_message", "Message sent to the customer", required=True, minlength=5),
               Field("improvement_idea", "Improvement idea from this feedback (optional)"),
           ])
    p.script("fb_close", "Close the feedback", (5, 0), "Stamps responded_at and closed_at.",
             "responded_at = now()\nclosed_at = responded_at\nstatus = \"closed\"\n")
    p.end("fb_closed", "Feedback answered", (6, 0), "Feedback answered and counted.")
    p.user("handover", "Register it as a complaint", (4, 1.3),
           """Customer service: start a complaint for this customer with the complaint form (copy the
           message) and enter the new complaint reference here.""",
           groups="customer_service", due="P1D", form=[
               Field("complaint_reference", "Reference of the new complaint", required=True),
           ])
    p.script("fb_handed_over", "Close as handed over", (5, 1.3), "Stamps closed_at.",
             "closed_at = now()\nstatus = \"handed_over\"\n")
    p.end("fb_to_complaint", "Handed over to complaint handling", (6, 1.3), "Feedback became a complaint.")
    p.chain("feedback_received", "fb_register", "route", "complaint_gw")
    p.flow("complaint_gw", "handover", "Yes", "${is_complaint == true}")
    p.flow("complaint_gw", "respond", "No", default=True)
    p.chain("respond", "fb_close", "fb_closed")
    p.chain("handover", "fb_handed_over", "fb_to_complaint")
    return p


# =====================================================================================
# Supplier nonconformity
# =====================================================================================

def supplier_nonconformity() -> Process:
    p = Process(
        "supplier_nonconformity",
        "Supplier nonconformity",
        """A nonconforming delivery or part from a supplier: assess it, quarantine the stock while
        purchasing asks the supplier for an 8D report, then run the shared root-cause / corrective-action /
        effectiveness loop and update the supplier rating (ISO 9001 8.4, 8.7, 10.2).""",
    )
    p.start("snc_found", "Nonconformity found", (0, 0),
            "Started by an employee at goods receipt, in production or from a customer complaint.", form=[
                Field("supplier_name", "Supplier", required=True, maxlength=200),
                Field("supplier_email", "Supplier contact e-mail", maxlength=200),
                Field("product", "Part or material (number and name)", required=True, maxlength=200),
                Field("lot_number", "Lot / batch / delivery note", maxlength=100),
                Field("quantity_affected", "Quantity affected", "long", min=0),
                enum("found_at", "Where was it found?", [
                    ("goods_receipt", "Goods receipt inspection"), ("production", "Production"),
                    ("customer", "At the customer"), ("other", "Elsewhere")], required=True),
                Field("description", "What is wrong?", required=True, minlength=10, maxlength=5000),
            ])
    p.script("snc_register", "Register the nonconformity", (1, 0),
             "Stamps received_at, makes sure there is a reference and known starting values.",
             "received_at = now()\nstatus = \"received\"\n" + reference_script("SNC")
             + default("effectiveness_wait", "\"P30D\"") + default("quantity_affected", "0") + """
closed_at = None
category = None
severity = None
root_cause = None
actions = []
effective = None
rca_loops = 0
rca_history = []
""")
    p.user("snc_assess", "Assess the nonconformity", (2, 0),
           """Quality lead: check the evidence, decide whether the supplier really delivered something
           nonconforming, choose the category and the severity.""",
           groups="quality_lead", due="P2D", form=[
               enum("category", "Category", [
                   ("dimension", "Dimension or function"), ("material", "Wrong or faulty material"),
                   ("documentation", "Missing or wrong certificates"), ("packaging", "Packaging or labels"),
                   ("delivery", "Quantity or delivery date"), ("other", "Something else")], required=True),
               Field("valid", "Confirmed supplier nonconformity (untick if not)", "boolean", default="true"),
               Field("invalid_reason", "If not confirmed: why not?"),
               enum("severity", "Severity", SEVERITIES, required=True),
           ])
    p.xor("snc_valid_gw", "Confirmed?", (3, 0))
    p.par("snc_split", "", (4, 0), "Quarantine and the supplier request run at the same time.")
    p.user("snc_contain", "Quarantine and decide disposition", (5, -1),
           """Production / quality: block the affected stock, count it and decide what happens to it.""",
           groups="production,quality_lead", due="P1D", form=[
               Field("containment_action", "What was blocked or sorted?", required=True, minlength=5),
               Field("containment_quantity", "Quantity quarantined", "long", default="0", min=0),
               enum("disposition", "Disposition", [
                   ("return", "Return to supplier"), ("rework", "Rework"), ("scrap", "Scrap"),
                   ("use_as_is", "Use as is (concession)")], required=True),
               Field("containment_done", "Containment is in place", "boolean", default="true"),
           ])
    p.script("snc_record_containment", "Record the containment", (6, -1), "Stamps containment_done_at.",
             "containment_done_at = now()\n")
    p.user("snc_request_8d", "Ask the supplier for an 8D report", (5, 1),
           """Purchasing: send the supplier a corrective action request (SCAR) with the evidence and ask for
           their 8D report. Record the request number and the answer date you agreed.""",
           groups="purchasing", due="P2D", form=[
               Field("scar_number", "Corrective action request number", required=True),
               Field("supplier_response_due", "Supplier must answer by", "date", required=True),
           ])
    p.script("snc_record_request", "Record the request", (6, 1), "Stamps supplier_notified_at.",
             "supplier_notified_at = now()\n")
    p.par("snc_join", "", (7, 0), "Waits for containment and the supplier request.")
    p.call("snc_improve", "Find root cause and fix it", (8, 0),
           "Calls the shared process 'rca_and_corrective_action' (include the supplier's 8D findings).",
           "rca_and_corrective_action")
    p.user("snc_rating", "Update the supplier rating", (9, 0),
           """Purchasing: record the effect on the supplier rating and any cost claimed from the supplier.""",
           groups="purchasing", due="P5D", form=[
               enum("supplier_rating_impact", "Effect on supplier rating", [
                   ("none", "None"), ("warning", "Warning"), ("downgrade", "Downgrade"),
                   ("blocked", "Block supplier for new orders")], required=True),
               Field("claim_amount", "Cost claimed from the supplier (whole currency units)", "long",
                     default="0", min=0),
               Field("supplier_notes", "Notes"),
           ])
    p.script("snc_close", "Close the nonconformity", (10, 0), "Stamps closed_at.",
             "closed_at = now()\nstatus = \"closed\"\n")
    p.end("snc_closed", "Nonconformity closed", (11, 0), "Closed after an effective improvement.")
    p.user("snc_close_invalid", "Close as not confirmed", (4, 2.2),
           """Quality lead: confirm why this is not a supplier nonconformity (for example our own handling
           damage). Your name is recorded as the person who decided.""",
           groups="quality_lead", due="P2D", form=[
               Field("invalid_reason", "Why is this not a supplier nonconformity?", required=True, minlength=5),
               Field("rejected_by", "Your name (person deciding)", required=True),
           ])
    p.script("snc_record_rejection", "Record the decision", (5, 2.2), "Stamps closed_at and keeps the reason.",
             "closure_reason = invalid_reason\nclosed_at = now()\nstatus = \"rejected\"\n"
             "containment_done = False\ncontainment_done_at = None\nsupplier_notified_at = None\n")
    p.end("snc_closed_invalid", "Closed as not confirmed", (6, 2.2), "Closed without investigation.")

    p.chain("snc_found", "snc_register", "snc_assess", "snc_valid_gw")
    p.flow("snc_valid_gw", "snc_close_invalid", "No", "${valid == false}")
    p.flow("snc_valid_gw", "snc_split", "Yes", default=True)
    p.chain("snc_close_invalid", "snc_record_rejection", "snc_closed_invalid")
    p.flow("snc_split", "snc_contain")
    p.flow("snc_split", "snc_request_8d")
    p.chain("snc_contain", "snc_record_containment", "snc_join")
    p.chain("snc_request_8d", "snc_record_request", "snc_join")
    p.chain("snc_join", "snc_improve", "snc_rating", "snc_close", "snc_closed")
    return p


# =====================================================================================
# Decision table
# =====================================================================================

SEVERITY_RULES = [
    # safety_issue, repeat_customer, customer_impact, affected_units -> severity, note
    ("true", "-", "-", "-", '"critical"', "Anything that can hurt someone or breaks a law is critical."),
    ("-", "true", "-", "-", '"critical"', "The same customer complains again: our last fix failed."),
    ("-", "-", '"unusable"', "-", '"major"', "The customer cannot use the product or service."),
    ("-", "-", "-", ">= 10", '"major"', "Ten or more units affected."),
    ("-", "-", "-", "-", '"minor"', "Everything else."),
]


def severity_dmn() -> str:
    inputs = [
        ("safety_issue", "Safety issue?", "boolean"),
        ("repeat_customer", "Repeat customer?", "boolean"),
        ("customer_impact", "Impact on the customer", "string"),
        ("affected_units", "Units affected", "integer"),
    ]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"'
        ' xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/"'
        ' xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/"'
        ' xmlns:modeler="http://camunda.org/schema/modeler/1.0"'
        ' id="complaint_severity_definitions" name="Complaint severity"'
        ' namespace="http://pdcaflow.example/decisions"'
        ' exporter="PDCA Flow process builder" exporterVersion="1.0"'
        ' modeler:executionPlatform="Camunda Platform" modeler:executionPlatformVersion="7.20.0">',
        '  <decision id="complaint_severity" name="Complaint severity">',
        '    <description>Sets the severity of a valid complaint. Rules are read top to bottom and the first'
        ' matching rule wins; the quality lead may change this table without touching the BPMN.'
        '</description>',
        '    <decisionTable id="complaint_severity_table" hitPolicy="FIRST">',
    ]
    for i, (name, label, type_ref) in enumerate(inputs, 1):
        lines += [
            f'      <input id="input_{i}" label="{label}">',
            f'        <inputExpression id="input_expression_{i}" typeRef="{type_ref}">',
            f'          <text>{name}</text>',
            '        </inputExpression>',
            '      </input>',
        ]
    lines.append('      <output id="output_severity" label="Severity" name="severity" typeRef="string" />')
    for r, rule in enumerate(SEVERITY_RULES, 1):
        *entries, out, note = rule
        lines += [f'      <rule id="rule_{r}">', f'        <description>{note}</description>']
        for i, text in enumerate(entries, 1):
            text = text.replace(">", "&gt;")
            lines.append(f'        <inputEntry id="rule_{r}_input_{i}"><text>{text}</text></inputEntry>')
        lines += [f'        <outputEntry id="rule_{r}_output"><text>{out}</text></outputEntry>',
                  '      </rule>']
    lines += [
        '    </decisionTable>',
        '  </decision>',
        '  <dmndi:DMNDI>',
        '    <dmndi:DMNDiagram id="complaint_severity_diagram">',
        '      <dmndi:DMNShape id="complaint_severity_di" dmnElementRef="complaint_severity">',
        '        <dc:Bounds height="80" width="180" x="160" y="100" />',
        '      </dmndi:DMNShape>',
        '    </dmndi:DMNDiagram>',
        '  </dmndi:DMNDI>',
        '</definitions>',
        '',
    ]
    return "\n".join(lines)


def main():
    for build in (complaint_to_improvement, rca_and_corrective_action, customer_feedback,
                  supplier_nonconformity):
        proc = build()
        proc.write(OUT / f"{proc.id}.bpmn")
        print("wrote", OUT / f"{proc.id}.bpmn")
    (OUT / "complaint_severity.dmn").write_text(severity_dmn(), encoding="utf-8")
    print("wrote", OUT / "complaint_severity.dmn")


if __name__ == "__main__":
    main()
