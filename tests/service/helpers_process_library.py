"""Drivers for the shipped process library: actors, form answers and a small task runner."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.runtime import Actor

PROCESSES = Path(__file__).resolve().parents[2] / "processes"

LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
SERVICE = Actor("carl.service", frozenset({"customer_service", "employee"}), "employee")
PRODUCTION = Actor("pia.production", frozenset({"production", "employee"}), "employee")
PURCHASING = Actor("paul.purchasing", frozenset({"purchasing", "employee"}), "employee")
SALES = Actor("sam.sales", frozenset({"sales", "employee"}), "employee")
INTAKE = Actor("public-intake", frozenset({"employee"}), "employee")
OWNERS = ["ann.owner", "bob.owner", "cem.owner", "dora.owner"]

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

COMPLAINT = {
    "customer_name": "Maria Kunde",
    "customer_email": "maria@example.org",
    "product": "Coffee grinder CG-200",
    "order_ref": "SO-4711",
    "description": "The grinder stopped working after two days and smells burnt.",
    "desired_outcome": "Replacement",
    "effectiveness_wait": "PT2S",
}


def add_owners(db) -> None:
    """The action owners as active accounts: a plan may only name existing users."""
    from engine.accounts import save_user

    for name in OWNERS:
        save_user(db, name, "employee", password="correct-horse-9", email=f"{name}@example.com", groups=[])


def owner(name: str) -> Actor:
    return Actor(name, frozenset({"employee"}), "employee")


def severity_rule(safety_issue: bool, repeat_customer: bool, customer_impact: str, affected_units: int) -> str:
    """The rules of processes/complaint_severity.dmn, restated to check the engine's answer."""
    if safety_issue or repeat_customer:
        return "critical"
    if customer_impact == "unusable" or affected_units >= 10:
        return "major"
    return "minor"


class Driver:
    """Runs one instance: finds the open task by BPMN id, completes it as an actor."""

    def __init__(self, runtime, instance) -> None:
        self.rt = runtime
        self.id = instance.id
        self.instance = instance

    def refresh(self):
        self.instance = self.rt.instance(self.id)
        return self.instance

    def open_tasks(self, spec_id: str | None = None):
        tasks = [t for t in self.rt.instance(self.id).tasks if t.state in ("open", "claimed")]
        return [t for t in tasks if spec_id is None or t.spec_id == spec_id]

    def open_ids(self) -> list[str]:
        return sorted(t.spec_id for t in self.open_tasks())

    def task(self, spec_id: str, actor: Actor):
        candidates = [t for t in self.open_tasks(spec_id)
                      if t.assignee in (None, actor.username)]
        assert candidates, (f"no open task {spec_id} for {actor.username}; open: {self.open_ids()}; "
                            f"incidents: {[i.message for i in self.rt.instance(self.id).incidents]}")
        return candidates[0]

    def complete(self, spec_id: str, actor: Actor, data: dict[str, Any]):
        task = self.task(spec_id, actor)
        self.instance = self.rt.complete(task.id, actor, data)
        assert not self.instance.incidents, [i.message for i in self.instance.incidents]
        return task

    def data(self) -> dict[str, Any]:
        return self.refresh().data


def fire_timers(runtime, traveller, seconds: float = 5) -> int:
    traveller.shift(timedelta(seconds=seconds))
    return runtime.fire_due_timers().fired


# ---------------------------------------------------------------------------------------- answers

def ack() -> dict[str, Any]:
    return {"acknowledgement_message": "Thank you - we are looking into it, reference in subject.",
            "acknowledgement_channel": "email"}


def triage(valid=True, safety_issue=False, repeat_customer=False, customer_impact="degraded",
           affected_units=1, category="product_quality", invalid_reason="") -> dict[str, Any]:
    return {"category": category, "valid": valid, "invalid_reason": invalid_reason,
            "safety_issue": safety_issue, "repeat_customer": repeat_customer,
            "customer_impact": customer_impact, "affected_units": affected_units,
            "triage_notes": ""}


def containment(done=True) -> dict[str, Any]:
    return {"containment_action": "Blocked batch 22-11 in the warehouse", "containment_quantity": 40,
            "containment_done": done}


def reply() -> dict[str, Any]:
    return {"reply_message": "We are sending a replacement and investigating the cause.",
            "remedy": "replacement"}


def analyse(root_cause="Motor winding overheats: insulation class too low") -> dict[str, Any]:
    return {"problem_statement": "Grinders fail within days: motor burns out",
            "why_1": "Motor overheats", "why_2": "Insulation class B instead of F", "why_3": "",
            "why_4": "", "why_5": "", "cause_people": "", "cause_machine": "", "cause_method": "",
            "cause_material": "Motor from new supplier", "cause_measurement": "No thermal test",
            "cause_environment": "", "root_cause": root_cause, "similar_elsewhere": True,
            "similar_where": "CG-300 uses the same motor"}


def plan_answers(actions: list[tuple[str, str, str | None]]) -> dict[str, Any]:
    """actions: (what, owner, due date or None) for up to four slots."""
    data: dict[str, Any] = {"success_criteria": "No motor failure complaints for 3 months"}
    for i in range(1, 5):
        what, who, due = actions[i - 1] if i <= len(actions) else ("", "", None)
        data[f"action_{i}_what"] = what
        data[f"action_{i}_owner"] = who
        if due is not None:
            data[f"action_{i}_due"] = due
    return data


def do_action(done_at="2026-03-10", result="Done, see change note CN-12") -> dict[str, Any]:
    return {"action.done_at": done_at, "action.result": result}


def check(recurred: bool, criteria_met: bool | None = None) -> dict[str, Any]:
    criteria_met = (not recurred) if criteria_met is None else criteria_met
    return {"problem_recurred": recurred, "success_criteria_met": criteria_met,
            "effectiveness_evidence": "Complaint database and line test results of the last period"}


def standardise() -> dict[str, Any]:
    return {"procedures_updated": True, "procedure_refs": "WI-17 rev C", "fmea_updated": True,
            "training_done": True, "training_notes": "Assembly line B", "lessons_learned":
            "Check insulation class on every motor change"}


def final_reply() -> dict[str, Any]:
    return {"final_reply": "The cause was a motor part; we changed supplier specification. Thank you!"}


def survey(status="answered", csat=4, nps=9) -> dict[str, Any]:
    data: dict[str, Any] = {"survey_status": status, "survey_comment": ""}
    if csat is not None:
        data["csat"] = csat
    if nps is not None:
        data["nps"] = nps
    return data


# ---------------------------------------------------------------------------------------- scenario

@dataclass
class ComplaintPlan:
    """Randomised answers for one complaint, and what the data must look like afterwards."""

    valid: bool
    safety_issue: bool
    repeat_customer: bool
    customer_impact: str
    affected_units: int
    category: str
    containment_done: bool
    actions_per_round: list[int] = field(default_factory=list)  # one entry per RCA round
    survey_status: str = "answered"
    csat: int | None = None
    nps: int | None = None
    pass_reference: bool = True

    @property
    def severity(self) -> str:
        return severity_rule(self.safety_issue, self.repeat_customer, self.customer_impact, self.affected_units)

    @property
    def loops(self) -> int:
        return len(self.actions_per_round) - 1

    @classmethod
    def random(cls, rng: random.Random) -> ComplaintPlan:
        rounds = rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
        status = rng.choice(["answered", "answered", "declined", "no_response"])
        return cls(
            valid=rng.random() > 0.2,
            safety_issue=rng.random() < 0.15,
            repeat_customer=rng.random() < 0.15,
            customer_impact=rng.choice(["unusable", "degraded", "cosmetic"]),
            affected_units=rng.choice([0, 1, 2, 5, 9, 10, 11, 50, 500]),
            category=rng.choice(["product_quality", "delivery", "service", "billing", "documentation",
                                 "safety", "other"]),
            containment_done=rng.random() > 0.1,
            actions_per_round=[rng.randint(1, 4) for _ in range(rounds)],
            survey_status=status,
            csat=rng.randint(1, 5) if rng.random() > 0.1 else None,
            nps=rng.randint(0, 10) if rng.random() > 0.1 else None,
            pass_reference=rng.random() > 0.2,
        )


def run_complaint(rt, traveller, plan: ComplaintPlan, number: int) -> Driver:
    """Drive one complaint to its end following ``plan``."""
    start = dict(COMPLAINT)
    if plan.pass_reference:
        start["reference"] = f"C-2026-{number:05d}"
    d = Driver(rt, rt.start("complaint_to_improvement", start, INTAKE))
    d.complete("acknowledge", SERVICE, ack())
    d.complete("triage", LEAD, triage(plan.valid, plan.safety_issue, plan.repeat_customer,
                                      plan.customer_impact, plan.affected_units, plan.category,
                                      "" if plan.valid else "Not our product"))
    if not plan.valid:
        d.complete("close_invalid", LEAD, {"invalid_reason": "Not our product (competitor brand)",
                                           "rejected_by": LEAD.username,
                                           "rejection_reply": "The grinder is not one of our products."})
        return d
    if plan.severity in ("critical", "major"):
        d.complete("containment", PRODUCTION, containment(plan.containment_done))
    d.complete("reply", SERVICE, reply())
    for round_no, count in enumerate(plan.actions_per_round, 1):
        d.complete("rca_analyse", LEAD, analyse(f"Root cause found in round {round_no}"))
        actions = [(f"Action {round_no}.{i}", OWNERS[i % len(OWNERS)], None if i == 3 else "2026-06-30")
                   for i in range(count)]
        d.complete("rca_plan", LEAD, plan_answers(actions))
        for _, who, _ in actions:
            d.complete("rca_do_action", owner(who), do_action())
        assert d.open_ids() == [], d.open_ids()
        assert fire_timers(rt, traveller) == 1
        last = round_no == len(plan.actions_per_round)
        d.complete("rca_check", LEAD, check(recurred=not last))
    d.complete("standardise", LEAD, standardise())
    d.complete("send_final_reply", SERVICE, final_reply())
    d.complete("survey", SERVICE, survey(plan.survey_status, plan.csat, plan.nps))
    return d

