"""The one back-off policy: failed work (timers, outgoing mail, scheduled starts) waits
`base * 2**(attempt-1)`, capped, before it is tried again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    base: timedelta
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the `attempts`-th failure."""
        return min(self.base * (2 ** max(0, attempts - 1)), self.cap)
