"""The runtime: the only way web handlers, the API, the CLI and the scheduler change process state.

Modules (ARCHITECTURE.md walks a completion and a timer firing through them):
- `facade`: `Runtime`, the service API callers use;
- `unit_of_work`: the only code that opens an instance write transaction (load, advance, save);
- `projection`: what the human-task, timer and message tables must say for a workflow, and views;
- `tasks`: the task operations (claim, complete, ...) with the permission rules of engine.permissions;
- `timers`: the one timer-firing path (leased, batched, backed off);
- `incidents`: the one incident writer;
- `spiff`: the only module touching SpiffWorkflow's internals (and its serialization).

Names are resolved lazily, so `engine.definitions` can import `engine.runtime.spiff` without
pulling in the facade (which imports `engine.definitions`).
"""

from __future__ import annotations

from typing import Any

from engine.views import Actor, InstanceView, TaskView

__all__ = ["Actor", "InstanceView", "Runtime", "TaskView"]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from engine.runtime.facade import Runtime

        return Runtime
    raise AttributeError(f"module 'engine.runtime' has no attribute {name!r}")
