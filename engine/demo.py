"""Sample complaints for `pdcaflow demo` (run by `make run`): a living inbox, case pages and a
dashboard that read like a small appliance maker's real complaints.

Each complaint is filed through the public intake (or registered by customer service for a phone
or e-mail complaint) and advanced step by step through the inbox operations, by the people whose
work each step is (customer service acknowledges and replies, the quality lead triages and
analyses, production contains, the action owners carry out the actions). The engine clock is set
back for each step (engine/clock.py), so a case filed weeks ago carries weeks-old dates, its
effectiveness check came due after its 30 days and fired through the scheduler's path, and the
dashboard shows times to close and a monthly trend. Every stage of the process has a case waiting
in it; a few are closed (one needed a second round of analysis) and one was rejected.

Nothing here is invented by the engine: the answers are the demo's data below, the references come
from the real allocator. Seeding happens once, and only into a database without complaints.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine import clock
from engine.intake import PUBLIC, file_complaint, intake_form
from engine.runtime import Runtime
from engine.views import Actor

COMPLAINT_PROCESS = "complaint_to_improvement"

CARL = Actor("carl.service", frozenset({"customer_service", "employee"}), "employee")
LENA = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
EMIL = Actor("emil.production", frozenset({"production", "employee"}), "employee")
PAULA = Actor("paula.purchasing", frozenset({"purchasing", "employee"}), "employee")
PEOPLE = {a.username: a for a in (CARL, LENA, EMIL, PAULA)}


@dataclass(frozen=True)
class Analysis:
    problem: str
    whys: tuple[str, ...]
    root_cause: str
    fishbone: dict[str, str] = field(default_factory=dict)  # cause_machine, cause_material, ...
    similar_where: str = ""


@dataclass(frozen=True)
class Round:
    """One round of root-cause analysis: the analysis, the plan and how the check went."""

    analysis: Analysis
    success_criteria: str
    actions: tuple[tuple[str, str, int, str], ...]  # (what, owner, due in days, what was done)
    effective: bool = True
    evidence: str = ""


@dataclass(frozen=True)
class Case:
    customer: str
    email: str
    product: str
    order_ref: str
    description: str
    desired: str
    stop: str  # the step left open: a task id, "effectiveness" (waiting for the check) or "closed"
    waiting: float  # days the case has been at that step (closed: days since it closed)
    channel: str = "web"  # web, or phone/email registered by customer service
    category: str = "product_quality"
    impact: str = "degraded"
    units: int = 1
    safety: bool = False
    repeat: bool = False
    valid: bool = True
    triage_notes: str = ""
    invalid_reason: str = ""
    containment: tuple[str, int] | None = None  # (what was done, units blocked)
    remedy: str = "replacement"
    reply: str = ""  # what we found so far and do for the customer now
    rounds: tuple[Round, ...] = ()
    standard: tuple[str, str, str] = ("", "", "")  # (documents changed, training, lessons learned)
    final: str = ""  # the cause and what changed, in the customer's words
    survey: tuple[str, int | None, int | None, str] = ("answered", None, None, "")


SIGNATURE = "\n\nKind regards\nCarl Weber, customer service"


def _letter(customer: str, body: str) -> str:
    return f"Dear {customer},\n\n{body}{SIGNATURE}"


# ------------------------------------------------------------------------------------------ data
CASES: tuple[Case, ...] = (
    Case("Hanna Berger", "hanna.berger@example.com", "Kettle K-200", "SO-24817",
         "The hinge of the lid snapped after about two weeks. The lid no longer closes, so the kettle "
         "does not switch off by itself and boils on.", "A replacement kettle",
         stop="closed", waiting=48, category="product_quality", impact="unusable", units=1,
         containment=("Checked the 96 K-200 kettles of lot 24-31 in stock: 7 with cracked hinges scrapped", 96),
         reply="the lid hinge of your kettle broke where the plastic pin sits in the body. We are "
               "sending you a new kettle today, and we are finding out why the pin broke.",
         rounds=(Round(Analysis(
             "Lid hinge pins of K-200 kettles from lot 24-31 break within weeks of use (3 returns).",
             ("The hinge pin breaks at its base", "The pin wall is thinner than drawn",
              "The moulding tool's core pin is worn"),
             "Worn core pin in the lid mould (tool LM-12) makes the hinge pin wall 0.4 mm too thin.",
             {"cause_machine": "Mould LM-12 past its service interval",
              "cause_measurement": "Wall thickness not in the first-article check"},
             "Lids of kettle K-300 come from the same mould family"),
             "No hinge complaint on lots moulded after the repair for 3 months",
             (("Repair the core pin of mould LM-12 and re-qualify the tool", "emil.production", 6,
               "Core pin replaced 12 May, first articles measured in spec (CMM report Q-2231)"),
              ("Add hinge wall thickness to the first-article inspection", "lena.lead", 10,
               "Inspection plan IP-K200 rev D released, gauge in place at the press")),
             evidence="Returns and complaints for lots 24-33 to 24-40: no broken hinge"),),
         standard=("WI-MLD-07 rev C (mould service intervals), IP-K200 rev D",
                   "Press operators of line 2 trained on the new wall-thickness gauge",
                   "Tool service intervals must count shots, not months"),
         final="the hinge broke because a worn part of the mould made it too thin. We repaired the "
               "mould, measure every new batch and have had no broken hinge since.",
         survey=("answered", 5, 9, "Quick and friendly, the new kettle works perfectly.")),
    Case("Thomas Keller", "t.keller@example.net", "Kettle K-200", "SO-24902",
         "Second kettle with the same problem: the lid hinge cracked after three weeks. I already "
         "had one replaced in spring.", "My money back",
         stop="closed", waiting=41, category="product_quality", impact="unusable", units=1, repeat=True,
         containment=("Blocked 312 kettles of lot 24-31 in the warehouse and sorted them by hinge "
                      "wall thickness", 312),
         remedy="credit",
         reply="we are sorry that the same part failed twice. We have refunded the price of the "
               "kettle to your card and blocked the batch it came from.",
         rounds=(Round(Analysis(
             "Repeat hinge failure on K-200 lot 24-31, customer affected twice.",
             ("The hinge pin breaks", "Thin pin wall from the worn lid mould"),
             "Worn core pin in the lid mould (tool LM-12) makes the hinge pin wall 0.4 mm too thin.",
             {"cause_method": "Blocked lots were not checked against earlier complaints"}),
             "No repeat complaint from customers who had a replacement",
             (("Replace kettles of lot 24-31 still at retailers", "paula.purchasing", 8,
               "148 units exchanged at 9 retailers, credit notes CN-5511 to CN-5519"),),
             evidence="Customer service log: no repeat complaint in 6 weeks"),),
         standard=("QP-08 rev B (link new complaints to open cases)", "Customer service team",
                   "A replacement must come from a checked lot"),
         final="your kettle came from a batch made with a worn mould. We have taken that batch off the "
               "shelves, repaired the mould and check every new batch.",
         survey=("answered", 3, 6, "Fine in the end, but I should not have had to complain twice.")),
    Case("Jonas Fischer", "jonas.fischer@example.org", "Coffee grinder CG-200", "SO-25120",
         "The grinder stopped after ten days and smelled burnt. It was used for about two cups a day.",
         "A grinder that works",
         stop="closed", waiting=9, category="product_quality", impact="unusable", units=1, safety=True,
         containment=("Stopped shipping CG-200 with motors from the new supplier; 85 units in quarantine", 85),
         reply="a burnt smell means the motor overheated. We are sending you a new grinder with a "
               "motor we have tested, and we have stopped shipping the batch yours came from.",
         rounds=(
             Round(Analysis("CG-200 motors overheat and fail within two weeks.",
                            ("The motor overheats", "The cooling vents are blocked by grounds"),
                            "Coffee grounds block the motor's cooling vents.",
                            {"cause_environment": "Fine grinding setting makes more dust"}),
                   "No motor failure on CG-200 in 6 weeks",
                   (("Add a dust shield in front of the motor vents", "emil.production", 7,
                     "Shield fitted from serial 25-0400"),),
                   effective=False,
                   evidence="Two more burnt motors in week 3, both with dust shields: the cause is elsewhere"),
             Round(Analysis("CG-200 motors still fail with the dust shield fitted.",
                            ("The winding overheats", "The insulation is class B, not F",
                             "The new motor supplier changed the insulation without notice"),
                            "The new motor supplier changed the winding insulation from class F to class B.",
                            {"cause_material": "Motor supplier changed insulation class",
                             "cause_measurement": "No thermal test at incoming inspection"},
                            "CG-300 uses the same motor"),
                   "No motor failure on CG-200 or CG-300 for 3 months",
                   (("Return to class F motors and claim the costs from the supplier", "paula.purchasing", 5,
                     "Supplier 8D received, class F motors from delivery 25-19"),
                    ("Add a thermal test to the incoming inspection of motors", "lena.lead", 12,
                     "Thermal test in incoming inspection plan IIP-M rev B")),
                   evidence="No motor failure since class F motors (6 weeks, 1,900 units)")),
         standard=("IIP-M rev B, supplier agreement SA-14 (change notification)", "Incoming inspection",
                   "Suppliers must notify material changes; we test what they cannot promise"),
         final="the motor's insulation was changed by our supplier without telling us, so it could "
               "not take the heat. We went back to the right motors and now test every delivery.",
         survey=("answered", 4, 7, "Took a while, but the new grinder is quiet and works.")),
    Case("Sofia Lindqvist", "sofia.lindqvist@example.com", "Hand mixer M-7", "SO-25388",
         "The box had no whisks, only the dough hooks.", "Please send the whisks",
         stop="closed", waiting=3, category="delivery", impact="degraded", units=1, remedy="other",
         reply="we are sending the two whisks by post today; they should arrive within three days.",
         rounds=(Round(Analysis("M-7 boxes shipped without whisks (2 complaints in May).",
                                ("The whisk bag was not packed", "The bag is packed at a separate table"),
                                "Whisk bags are packed at a separate table with no check that each box got one.",
                                {"cause_method": "No check weight at the end of the line"}),
                       "No missing-part complaint on M-7 for 2 months",
                       (("Check-weigh every M-7 box at the end of the line", "emil.production", 6,
                         "Check weigher set to 1,420 g ± 15 g, boxes under weight are rejected"),),
                       evidence="Rejected boxes caught 4 missing bags in the first week; no complaint since"),),
         standard=("WI-PACK-M7 rev C", "Packing team line 1", "A missing part is cheaper to catch by weight"),
         final="your mixer was packed without its whisk bag. Every box is now weighed before it "
               "leaves, so a missing part is caught.",
         survey=("no_response", None, None, "")),
    Case("Peter Brandt", "peter.brandt@example.de", "Espresso machine E-90", "",
         "The machine leaks water under the drip tray after I descaled it with vinegar.",
         "Repair under warranty",
         stop="closed", waiting=20, category="product_quality", impact="degraded", valid=False,
         invalid_reason="Damage from descaling with vinegar, which the manual forbids (page 14)",
         triage_notes="Photos show the seals swollen by acid"),
    Case("Aylin Demir", "aylin.demir@example.com", "Toaster T-3", "SO-25611",
         "The left side of the casing gets hot enough to burn a hand, after one slice.",
         "Make it safe", stop="survey", waiting=2, channel="phone", category="safety", impact="unusable",
         units=1, safety=True,
         containment=("Stopped shipping T-3 from lot 25-07; 210 units blocked pending a temperature test", 210),
         remedy="replacement",
         reply="we have tested toasters from your batch and found the casing too hot. A replacement "
               "from a tested batch is on its way; please stop using your toaster.",
         rounds=(Round(Analysis("Casing of T-3 toasters from lot 25-07 reaches 78 °C on the left side.",
                                ("The heating element sits too close to the casing",
                                 "The element bracket is bent", "The bracket supplier changed the bend angle"),
                                "A changed bracket bend angle puts the heating element 4 mm closer to the casing.",
                                {"cause_material": "Bracket drawing revision not shared with the supplier"}),
                       "Casing below 60 °C on every tested toaster for 3 months",
                       (("Return to bracket revision C and re-test lot 25-07", "paula.purchasing", 6,
                         "Revision C brackets fitted, 210 units re-tested below 55 °C"),),
                       evidence="Casing temperature test on 5 units per lot: all below 55 °C"),),
         standard=("Drawing T3-BR-02 rev C sent with every order", "Purchasing",
                   "Drawings go to suppliers with every order, not once"),
         final="a part holding the heating element was made at the wrong angle. Every toaster is "
               "now temperature-tested before it ships."),
    Case("Café Morgenrot", "info@cafe-morgenrot.example", "Espresso machine E-90", "PO-8120",
         "Our E-90 shows error E4 several times a day since the last service visit.",
         "A technician visit this week", stop="send_final_reply", waiting=1, channel="email",
         category="service", impact="degraded", units=1, remedy="repair",
         reply="our technician will visit on Thursday morning and bring a new pressure sensor.",
         rounds=(Round(Analysis("E-90 shows error E4 after service visits by the new contractor.",
                                ("The pressure sensor connector is loose", "It was not clipped after the service"),
                                "The service checklist of the new contractor omits re-clipping the sensor connector.",
                                {"cause_people": "Contractor not trained on E-90"}),
                       "No E4 error after a service visit for 2 months",
                       (("Add the connector check to the service checklist and brief the contractor",
                         "lena.lead", 5, "Checklist SC-E90 rev B, contractor briefed 14 May"),),
                       evidence="12 service visits since, no E4 call-back"),),
         standard=("SC-E90 rev B", "Service contractor Nord", "Contractors get the same checklist training as our staff")),
    Case("Marco Rossi", "marco.rossi@example.it", "Blender B-15", "SO-25702",
         "The jug leaks at the base when it is more than half full.", "A new jug",
         stop="standardise", waiting=1, category="product_quality", impact="degraded", units=1,
         reply="a new jug is on its way. We are checking the seal that sits at the base of the jug.",
         rounds=(Round(Analysis("B-15 jugs leak at the base seal when filled above 0.8 l.",
                                ("The base seal is not seated", "The seal is 0.3 mm too small"),
                                "The base seal from the second-source supplier is 0.3 mm under size.",
                                {"cause_material": "Second-source seal not measured at approval"}),
                       "No leak complaint on B-15 for 3 months",
                       (("Block second-source seals and use the first source only", "paula.purchasing", 4,
                         "Second source blocked in the ERP, stock returned"),),
                       evidence="Leak test of 50 jugs: no leak; no complaint in 4 weeks"),)),
    Case("Familie Wagner", "wagner.family@example.de", "Air fryer AF-4", "SO-25834",
         "The non-stick coating of the basket is peeling after a month.", "A new basket",
         stop="rca_check", waiting=1, category="product_quality", impact="degraded", units=1,
         reply="a new basket is on its way to you. We are looking into the coating.",
         rounds=(Round(Analysis("AF-4 basket coating peels within a month (4 complaints).",
                                ("The coating does not stick to the metal", "The metal was not blasted"),
                                "Baskets from one shift skipped the grit blasting before coating.",
                                {"cause_method": "Blasting not recorded per batch"}),
                       "No coating complaint for 3 months",
                       (("Record grit blasting per batch and block unrecorded batches", "emil.production", 7,
                         "Batch record BR-AF4 includes blasting, unrecorded batches are held"),),
                       evidence=""),)),
    Case("Ravi Patel", "ravi.patel@example.co.uk", "Blender B-15", "SO-25901",
         "The motor smells of burning on the highest speed.", "A replacement",
         stop="effectiveness", waiting=9, category="product_quality", impact="degraded", units=2,
         reply="we are sending a replacement blender and testing motors from your batch.",
         rounds=(Round(Analysis("B-15 motors smell burnt at speed 5 (2 units, same order).",
                                ("The motor runs hot at speed 5", "The speed switch gives full voltage"),
                                "A wiring mistake on the speed switch sends full voltage at speed 5.",
                                {"cause_method": "Wiring diagram at the station was an old revision"}),
                       "No burnt-smell complaint on B-15 for 2 months",
                       (("Replace the wiring diagram at station 4 and check all stations", "emil.production", 3,
                         "Diagrams at all 6 stations checked, station 4 corrected"),
                        ("Test speed 5 current on every B-15 at the end of the line", "lena.lead", 6,
                         "End-of-line test limit 2.1 A added")),
                       evidence=""),)),
    Case("Greta Gruber", "greta.gruber@example.at", "Kettle K-300", "SO-26004",
         "The water tastes of plastic even after boiling it ten times.", "Refund",
         stop="rca_do_action", waiting=2, category="product_quality", impact="degraded", units=1,
         remedy="credit",
         reply="we have refunded your kettle and are testing kettles from the same batch.",
         rounds=(Round(Analysis("K-300 water tastes of plastic (3 complaints, lot 25-11).",
                                ("The lid gasket gives off a smell", "A new gasket material was used"),
                                "A cheaper gasket material approved without a taste test.",
                                {"cause_material": "Gasket material change", "cause_method": "No taste test at approval"}),
                       "No taste complaint on K-300 for 3 months",
                       (("Return to the food-grade silicone gasket", "paula.purchasing", 10, ""),
                        ("Add a taste and smell test to material approvals", "lena.lead", 21, "")),
                       evidence=""),)),
    Case("Lukas Hoffmann", "lukas.hoffmann@example.de", "Hand mixer M-7", "SO-26050",
         "The speed button sticks at level 3.", "A repair", stop="rca_plan", waiting=1,
         category="product_quality", impact="degraded", units=1, remedy="repair",
         reply="please send the mixer back with the prepaid label attached; we will repair it within a week.",
         rounds=(Round(Analysis("M-7 speed button sticks at level 3.",
                                ("The button rubs on the housing", "The housing opening is off-centre"),
                                "The housing opening for the speed button is 0.5 mm off-centre since the mould change.",
                                {"cause_machine": "New housing mould not fully qualified"}),
                       "", ()),)),
    Case("Nina Schulz", "nina.schulz@example.com", "Air fryer AF-4", "SO-26102",
         "The timer dial came off in my hand.", "A new dial", stop="rca_analyse", waiting=6,
         category="product_quality", impact="degraded", units=1, remedy="replacement",
         reply="a new dial is on its way; it simply pushes onto the shaft."),
    Case("Hausrat Müller GmbH", "einkauf@hausrat-mueller.example", "Toaster T-3", "PO-7781",
         "40 of the 120 toasters delivered on Monday arrived with dented side panels. The outer "
         "cartons look fine.", "Credit for the damaged units",
         stop="containment", waiting=0.4, channel="email", category="delivery", impact="cosmetic", units=40,
         remedy="credit", reply="a credit note for the 40 toasters is on its way. We are checking the "
                                "toasters still in our warehouse and how they are packed."),
    Case("Jon Smith", "jon.smith@example.com", "Kettle K-200", "SO-26190",
         "The invoice charges me for two kettles but I only received one.", "Correct the invoice",
         stop="triage", waiting=0.5, channel="phone"),
    Case("Mia Richter", "mia.richter@example.de", "Toaster T-3", "SO-26211",
         "The crumb tray does not slide out any more, it is stuck.", "A working crumb tray",
         stop="acknowledge", waiting=0.1),
)


# ------------------------------------------------------------------------------------------ steps
@dataclass
class Step:
    task: str  # the task id to complete, or "timer" (the effectiveness wait runs out)
    hours: float  # after the previous step
    actor: Actor = LENA
    data: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None  # an action's assignee: which of the parallel action tasks


def _rca_steps(case: Case) -> Iterator[Step]:
    for number, rnd in enumerate(case.rounds, 1):
        a = rnd.analysis
        whys = {f"why_{i}": (a.whys[i - 1] if i <= len(a.whys) else "") for i in range(1, 6)}
        yield Step("rca_analyse", 60 if number == 1 else 20, LENA, {
            "problem_statement": a.problem, **whys, "root_cause": a.root_cause, **a.fishbone,
            "similar_elsewhere": bool(a.similar_where), "similar_where": a.similar_where})
        if not rnd.actions:
            return
        yield Step("rca_plan", 22, LENA, {"success_criteria": rnd.success_criteria, **_plan(rnd)})
        since_plan = 0.0
        for _, owner, due, result in rnd.actions:
            if not result:  # not done yet: the case waits for its actions
                return
            hours = max(4.0, due * 20 - since_plan)  # most are done a little before they are due
            since_plan += hours
            yield Step("rca_do_action", hours, PEOPLE[owner], {"action.result": result}, owner=owner)
        yield Step("timer", 30 * 24 + 2)  # the effectiveness wait (P30D) runs out
        if not rnd.evidence:
            return
        yield Step("rca_check", 20, LENA, {"problem_recurred": not rnd.effective,
                                           "success_criteria_met": rnd.effective,
                                           "effectiveness_evidence": rnd.evidence})


def _plan(rnd: Round) -> dict[str, Any]:
    """The plan form's four action slots; due dates are filled in when the step runs (days from then)."""
    slots: dict[str, Any] = {}
    for i in range(1, 5):
        what, owner, due, _ = rnd.actions[i - 1] if i <= len(rnd.actions) else ("", "", 0, "")
        slots |= {f"action_{i}_what": what, f"action_{i}_owner": owner}
        if what:
            slots[f"action_{i}_due"] = due
    return slots


def steps(case: Case) -> list[Step]:
    """What people did on the case, in order, up to the step it is left at."""
    out = _all_steps(case)
    rng = random.Random(case.customer)  # people take more or less time, the same on every run
    for step in out:
        if step.task != "timer":
            step.hours = round(step.hours * rng.uniform(0.6, 1.3), 1)
    return _until(out, case.stop)


def _all_steps(case: Case) -> list[Step]:
    """Every step the case's data answers, in order."""
    out = [Step("acknowledge", 3, CARL, {"acknowledgement_channel": "phone" if case.channel == "phone" else "email",
                                         "acknowledgement_message": _letter(case.customer, (
                                             "thank you for telling us about the problem with your "
                                             f"{case.product}. I am looking after your complaint personally "
                                             "and will write again within two working days."))})]
    out.append(Step("triage", 18, LENA, {
        "category": case.category, "valid": case.valid, "invalid_reason": case.invalid_reason,
        "safety_issue": case.safety, "repeat_customer": case.repeat, "customer_impact": case.impact,
        "affected_units": case.units, "triage_notes": case.triage_notes}))
    if not case.valid:
        out.append(Step("close_invalid", 20, LENA, {
            "invalid_reason": case.invalid_reason, "rejected_by": "Lena Lang, quality lead",
            "rejection_reply": _letter(case.customer, (
                f"thank you for your message about your {case.product}. We have looked at it carefully: "
                f"{case.invalid_reason[:1].lower() + case.invalid_reason[1:]}. This is not covered by the "
                "warranty, but our service team can offer a repair at a fixed price."))}))
        return out
    if case.containment:
        out.append(Step("containment", 5, EMIL, {"containment_action": case.containment[0],
                                                  "containment_quantity": case.containment[1],
                                                  "containment_done": True}))
    if case.reply:
        out.append(Step("reply", 20, CARL, {"reply_message": _letter(case.customer, case.reply),
                                            "remedy": case.remedy}))
    out.extend(_rca_steps(case))
    if case.standard[0]:
        docs, training, lessons = case.standard
        out.append(Step("standardise", 60, LENA, {"procedures_updated": True, "procedure_refs": docs,
                                                  "fmea_updated": case.safety, "training_done": True,
                                                  "training_notes": training, "lessons_learned": lessons}))
    if case.final:
        out.append(Step("send_final_reply", 20, CARL, {"final_reply": _letter(case.customer, case.final)}))
    status, csat, nps, comment = case.survey
    if case.final and case.stop == "closed":
        answers: dict[str, Any] = {"survey_status": status, "survey_comment": comment}
        if csat is not None:
            answers |= {"csat": csat, "nps": nps}
        out.append(Step("survey", 24 * 8, CARL, answers))
    return out


def _until(out: list[Step], stop: str) -> list[Step]:
    """The steps before the one the case is left at (all of them for a closed case)."""
    if stop == "effectiveness":
        return out[:max(i for i, s in enumerate(out) if s.task == "timer")]
    for i, s in enumerate(out):
        if s.task == stop:
            return out[:i]
    return out


# ------------------------------------------------------------------------------------------ seeding
def seed_demo_instances(runtime: Runtime, cases: tuple[Case, ...] = CASES) -> int:
    """File the sample complaints once, into a database without complaints; returns how many.
    Needs the demo accounts (web/cli.py DEMO_USERS): the action owners must be active users."""
    if not any(d["key"] == COMPLAINT_PROCESS for d in runtime.definitions_list()):
        return 0
    if runtime.instances(key=COMPLAINT_PROCESS, limit=1):
        return 0
    form = intake_form(runtime, COMPLAINT_PROCESS)
    now = clock.now()
    # oldest first, so the references count up with the dates as real ones do
    planned = [(case, steps(case)) for case in cases]
    planned.sort(key=lambda cs: -(sum(s.hours for s in cs[1]) / 24 + cs[0].waiting))
    engine_log = logging.getLogger("pdcaflow.engine")
    level = engine_log.level
    engine_log.setLevel(max(level, logging.WARNING))  # not a "timer fired" line per closed case
    try:
        for case, todo in planned:
            filed = now - timedelta(days=case.waiting, hours=sum(s.hours for s in todo))
            _run(runtime, form, case, todo, filed)
    finally:
        engine_log.setLevel(level)
    return len(planned)


def _run(runtime: Runtime, form: list[dict[str, Any]], case: Case, todo: list[Step], filed: datetime) -> None:
    submitted = {"customer_name": case.customer, "customer_email": case.email, "product": case.product,
                 "order_ref": case.order_ref, "description": case.description, "desired_outcome": case.desired}
    submitted = {k: v for k, v in submitted.items() if k in {f["id"] for f in form}}
    at = filed
    with clock.shifted(at - clock.now()):
        actor = CARL if case.channel != "web" else PUBLIC
        _, instance = file_complaint(runtime, COMPLAINT_PROCESS, form, submitted, case.channel, actor)
    for step in todo:
        at += timedelta(hours=step.hours)
        with clock.shifted(at - clock.now()):
            if step.task == "timer":
                runtime.fire_due_timers(worker="demo")
                instance = runtime.instance(instance.id)
                continue
            task = next(t for t in instance.tasks if t.spec_id == step.task
                        and t.state in ("open", "claimed") and (step.owner is None or t.assignee == step.owner))
            data = dict(step.data)
            for key, value in list(data.items()):
                if key.endswith("_due") and isinstance(value, int):  # days from the planning day
                    data[key] = (at + timedelta(days=value)).date().isoformat()
            if step.task == "rca_do_action":
                data["action.done_at"] = at.date().isoformat()
            instance = runtime.complete(task.id, step.actor, data, history=False)
