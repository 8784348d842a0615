"""Sample complaints for `pdcaflow demo`, left in several stages so a new user sees a living inbox.

Each complaint is started through the runtime and advanced a different number of steps by filling
its forms with plausible values, exactly as people would through the inbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine import clock
from engine.errors import EngineError
from engine.runtime import Runtime
from engine.views import Actor

COMPLAINT_PROCESS = "complaint_to_improvement"
DEMO_MARKER = "demo"
SAMPLES = [
    ("Hanna Berger", "hanna.berger@example.com", "Kettle K-200", "The lid hinge broke after two weeks.",
     "Replacement kettle"),
    ("Marco Rossi", "marco.rossi@example.com", "Blender B-15", "The jug leaks at the base when full.",
     "Refund"),
    ("Aylin Demir", "aylin.demir@example.com", "Toaster T-3", "The casing gets hot enough to burn a hand.",
     "Make it safe"),
    ("Jon Smith", "jon.smith@example.com", "Kettle K-200", "The delivery arrived two weeks late.",
     "An apology and a voucher"),
    ("Sofia Lind", "sofia.lind@example.com", "Mixer M-7", "A missing whisk attachment in the box.",
     "Send the missing part"),
    ("Ravi Patel", "ravi.patel@example.com", "Blender B-15", "The motor smells of burning on high speed.",
     "Replacement"),
]
OWNERS = ("emil.production", "paula.purchasing")


def autofill(form: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """Plausible answers for a form, chosen from its field model."""
    values: dict[str, Any] = {}
    today = clock.now().date()
    for field in form:
        fid, kind = field["id"], field["type"]
        if field.get("readonly"):
            continue
        if kind == "enum" and field["options"]:
            values[fid] = field["options"][step % len(field["options"])]["id"]
        elif kind == "boolean":
            values[fid] = fid in ("valid", "containment_done", "effective", "procedures_updated", "training_done") \
                or (fid == "safety_issue" and step % 3 == 2)
        elif kind == "date":
            values[fid] = (today + timedelta(days=7 + step)).isoformat()
        elif kind == "long":
            rules = field.get("validation", {})
            low = int(float(rules.get("min", 1)))
            high = int(float(rules.get("max", low + 10)))
            values[fid] = min(high, max(low, high - 1))
        elif fid.endswith("owner"):
            values[fid] = OWNERS[step % len(OWNERS)] if fid.startswith("action_1") else ""
        elif fid.endswith("email"):
            values[fid] = "customer@example.com"
        elif field["required"] or fid.startswith(("action_1", "root_cause", "why_1", "problem", "success")):
            values[fid] = f"{field['label']}: demo entry"
    return {k: v for k, v in values.items() if v != ""}


def seed_demo_instances(runtime: Runtime, count: int = len(SAMPLES)) -> int:
    """Start sample complaints once (a second run adds nothing); returns how many were started."""
    if not any(d["key"] == COMPLAINT_PROCESS for d in runtime.definitions_list()):
        return 0
    if any((i.get("business_key") or "").startswith("DEMO-") for i in runtime.instances(key=COMPLAINT_PROCESS)):
        return 0
    lead = Actor("lena.lead", frozenset({"quality_lead", "customer_service", "production", "purchasing"}),
                 "quality_lead")
    started = 0
    for number, (name, email, product, description, outcome) in enumerate(SAMPLES[:count]):
        data = {"customer_name": name, "customer_email": email, "product": product, "order_ref": f"SO-{4100 + number}",
                "description": description, "desired_outcome": outcome, "reference": f"DEMO-{number + 1:04d}",
                "channel": "email", "effectiveness_wait": "P30D"}
        instance = runtime.start(COMPLAINT_PROCESS, data, lead, business_key=data["reference"])
        started += 1
        for step in range(number):  # complaint N is advanced N steps: every stage is represented
            open_tasks = [t for t in instance.tasks if t.state in ("open", "claimed")]
            if not open_tasks:
                break
            task = open_tasks[0]
            actor = lead if task.assignee in (None, lead.username) else Actor(task.assignee, frozenset(), "employee")
            try:
                instance = runtime.complete(task.id, actor, autofill(task.form, step))
            except EngineError:
                break
    return started
