"""The processes sandboxed code runs in, so a hard limit can stop it.

The step budget in engine/sandbox_run.py stops Python-level loops, but one C call (`str()` of a huge
nested list, `sum()` over it) runs to its end however long it takes, and memory it allocates is the
server's. So code runs in a worker process: a pre-started `python -m engine.sandbox_worker` that
serves requests over a socket, one at a time. The parent waits for the reply at most the time
limit (plus a short grace for the in-worker budget, which reports the failing line, to win); past
that it kills the worker and starts a fresh one. Inside, each evaluation runs under RLIMIT_AS
(what it may allocate on top of what the worker already holds) and RLIMIT_CPU (a backstop that
stops the worker should the parent die mid-run).

Workers are pooled (one per concurrent caller; a web server's threads each get their own) and a
spare is always warming up, so a killed worker's replacement costs the next caller nothing.
Requests and replies are pickles of plain values; the worker only ever unpickles what its parent
sent, and the parent only what a worker sent after measuring it (engine/sandbox_run.py).
"""

from __future__ import annotations

import atexit
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent)  # the directory holding the engine package
_START_TIMEOUT = 30.0  # seconds a new worker may take to import (not charged to any script)
_GRACE = 0.5  # seconds after the time limit before the parent kills a worker
_MAX_IDLE = 4


class WorkerFailure(Exception):
    """The worker did not reply: killed on timeout, or it died (the message says which)."""


class _Gone(Exception):
    """The worker was dead before it got the request (so retrying cannot repeat any effect)."""


class _Worker:
    def __init__(self) -> None:
        parent_end, child_end = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.sandbox_worker", str(child_end.fileno())],
            pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            env=env, cwd=_ROOT, start_new_session=True)  # own session: a Ctrl-C to the server is not its
        child_end.close()
        self.conn = Connection(parent_end.detach())
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(_START_TIMEOUT):
            self.kill()
            raise WorkerFailure("the sandbox worker did not start")
        try:
            self.conn.recv_bytes(16)
        except (EOFError, OSError):
            raise _Gone from None
        self.ready = True

    def ask(self, request: bytes, timeout: float, max_reply: int) -> bytes:
        self.wait_ready()
        try:
            self.conn.send_bytes(request)
        except OSError:
            raise _Gone from None
        try:
            if not self.conn.poll(timeout + _GRACE):
                self.kill()
                raise WorkerFailure(f"time limit of {timeout:g}s exceeded; the run was stopped")
            return self.conn.recv_bytes(max_reply)
        except (EOFError, OSError) as exc:
            code = self.kill()
            if code == -signal.SIGXCPU:
                raise WorkerFailure(f"time limit of {timeout:g}s exceeded; the run was stopped") from exc
            if isinstance(exc, OSError) and "bad message length" in str(exc):
                raise WorkerFailure("the result is too large to hand back") from exc
            raise WorkerFailure(f"the sandbox worker stopped (exit code {code})") from exc

    def kill(self) -> int | None:
        try:
            self.process.kill()
            code = self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            code = None
        self.conn.close()
        return code


class _Pool:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Worker] = []
        self.pid = os.getpid()

    def _take(self) -> _Worker:
        with self.lock:
            if self.pid != os.getpid():  # a forked server process: its parent's workers are not ours
                self.idle, self.pid = [], os.getpid()
            worker = self.idle.pop() if self.idle else None
            if not self.idle:
                self.idle.append(_Worker())  # the spare warms up while this request runs
        return worker or _Worker()

    def _give_back(self, worker: _Worker) -> None:
        with self.lock:
            if len(self.idle) < _MAX_IDLE and self.pid == os.getpid():
                self.idle.append(worker)
                return
        worker.kill()

    def call(self, request: Any, timeout: float, max_reply: int) -> Any:
        """Send `request` to a worker and return its reply; WorkerFailure if it gave none."""
        try:
            payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - e.g. a variable holding an object that cannot be copied
            raise WorkerFailure(f"the variables the code uses cannot be handed to the sandbox: {exc}") from None
        attempts = _MAX_IDLE + 2  # every idle worker may have died (e.g. killed by the OOM killer)
        for attempt in range(attempts):
            worker = self._take()
            try:
                raw = worker.ask(payload, timeout, max_reply)
            except _Gone:  # a worker that had died before getting the request: take another
                worker.kill()
                if attempt == attempts - 1:
                    raise WorkerFailure("no sandbox worker could be started") from None
                continue
            except BaseException:
                worker.kill()
                raise
            reply = pickle.loads(raw)
            if getattr(reply, "retire", False):
                worker.kill()
            else:
                self._give_back(worker)
            return reply
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self.lock:
            if self.pid != os.getpid():
                return  # a forked child exiting: the workers are its parent's
            workers, self.idle = self.idle, []
        for worker in workers:
            worker.kill()


POOL = _Pool()
atexit.register(POOL.close)


# ---------------------------------------------------------------------- the worker process
def _vm_bytes() -> int | None:
    """Address space mapped now (Linux); None where /proc is missing (then no memory limit)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        return None


def _limit(memory_bytes: int | None, cpu_seconds: float | None) -> None:
    """Limit what the next evaluation may allocate (on top of what is mapped now) and its CPU time."""
    mapped = _vm_bytes() if memory_bytes is not None else None
    _set_soft(resource.RLIMIT_AS, None if mapped is None or memory_bytes is None else mapped + memory_bytes)
    if cpu_seconds is not None:
        used = resource.getrusage(resource.RUSAGE_SELF)
        _set_soft(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime + cpu_seconds) + 2)


def _set_soft(which: int, value: int | None) -> None:
    """Set a soft limit (None: as high as allowed), never above the hard limit the worker was given."""
    hard = resource.getrlimit(which)[1]
    if value is None or (hard != resource.RLIM_INFINITY and value > hard):
        value = hard
    resource.setrlimit(which, (value, hard))


def serve(fd: int) -> None:
    """The worker's loop: one request in, one reply out, until the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from engine import sandbox_run  # imported before saying ready, so no request pays for it

    conn = Connection(fd)
    conn.send_bytes(b"ready")
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        request = pickle.loads(raw)
        limits = request.limits
        try:
            _limit(limits.memory_mb * 1024 * 1024, limits.time)
            reply = sandbox_run.handle(request)
        except MemoryError:
            reply = sandbox_run.memory_exceeded(limits)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: reported as the run's failure, worker replaced
            reply = sandbox_run.internal_error(exc)
        finally:
            _limit(None, None)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result is the code's problem, reported
            data = pickle.dumps(sandbox_run.unpicklable(exc))
        conn.send_bytes(data)
        if reply.retire:
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]))
