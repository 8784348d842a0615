"""For a statement that locks an instance row and reads other rows with it (a completion reads the
instance's task or external-task rows that way): are those other rows current?

On PostgreSQL a statement that had to wait for the row lock returns the locked row as it is now, but
reads everything else from its snapshot, taken before the wait. SEEN_VERSION, added to such a
statement, is the instance's version as that snapshot saw it; one other than the locked row's
`version` says the other rows may be stale, and the caller reads them again under the lock. That
holds because every change to an instance's task and external-task rows goes with a save of the
instance, which raises its version.
"""

from __future__ import annotations

from sqlalchemy import select

from storage.models import ProcessInstance

_SEEN = ProcessInstance.__table__.alias("seen")
SEEN_VERSION = (select(_SEEN.c.version).where(_SEEN.c.id == ProcessInstance.__table__.c.id).scalar_subquery()
                .label("seen_version"))
