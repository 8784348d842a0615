"""What a customer may learn about their complaint without an account: its status page
(`GET /api/v1/complaints/{reference}?email=`, the public page `/status`).

The reference alone is not enough: the e-mail address given on the complaint must match (case and
surrounding spaces aside). An unknown reference and a wrong address get the same answer (None:
404), so the lookup reveals nothing about which references exist; callers rate-limit it.

`stage` is what the process model says to customers: the `customer.stage` property
(`<camunda:property name="customer.stage" value="..."/>`) of the element(s) the case is at, e.g.
the open user task or the call activity running the investigation. Internal names (task ids,
process keys, variables) never reach the answer; an element without the property falls back to
a plain sentence for the status.
"""

from __future__ import annotations

import hmac
from typing import Any

from engine.runtime import Runtime
from storage import instances as store

STAGE_PROPERTY = "customer.stage"
STATUSES = ("received", "in_progress", "closed")
_FALLBACK_STAGE = {
    "received": "We have received your complaint.",
    "in_progress": "We are working on your complaint.",
    "closed": "Your complaint is closed.",
}
_REJECTED_STAGE = "Your complaint is closed. We have written to you with our decision and the reasons."


def _same_address(stored: Any, given: str) -> bool:
    a = str(stored or "").strip().lower().encode()
    b = given.strip().lower().encode()
    return bool(a) and hmac.compare_digest(a, b)


def status_of(instance_status: str, data_status: Any) -> str:
    """One of STATUSES, from the instance's status and the process's own `status` variable (which
    stays at the word the step that set it wrote, e.g. "acknowledged", while the case moves on)."""
    if instance_status in ("completed", "cancelled"):
        return "closed"
    return "received" if data_status in (None, "", "received") else "in_progress"


def progress(runtime: Runtime, instance_id: str, instance_status: str, data: dict[str, Any]) -> dict[str, Any]:
    """Where a case stands as its customer is told: `{status, stage, declared}`; `declared` is False
    when no element the case is at says `customer.stage` (the stage is then the plain fallback). The
    public status answer and the case panel staff read (web/case_values.py) both come from here."""
    status = status_of(instance_status, data.get("status"))
    if status == "closed":
        stages = [_REJECTED_STAGE] if data.get("status") == "rejected" else []
    else:
        stages = runtime.active_properties(instance_id, STAGE_PROPERTY)
    return {"status": status, "stage": " ".join(stages) or _FALLBACK_STAGE[status],
            "declared": bool(stages)}


def complaint_status(runtime: Runtime, process_key: str, reference: str, email: str) -> dict[str, Any] | None:
    """`{reference, status, stage, received_at, updated_at}` of the complaint with this reference
    whose customer e-mail is `email`, or None (no such complaint, or the address does not match)."""
    reference, email = reference.strip(), email.strip()
    if not reference or not email or len(reference) > 255:
        return None
    with runtime.db.read() as session:
        conn = session.connection()
        row = next((r for r in store.instances_by_business_key(conn, reference, process_key)
                    if _same_address((r.data or {}).get("customer_email"), email)), None)
        if row is None:
            return None
        updated_at = store.last_activity(conn, row.id) or row.ended_at or row.started_at
    now = progress(runtime, row.id, row.status, dict(row.data or {}))
    return {"reference": reference, "status": now["status"], "stage": now["stage"],
            "received_at": row.started_at.isoformat(), "updated_at": updated_at.isoformat()}
