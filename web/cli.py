"""The `pdcaflow` command line. Its commands and options are a contract that scripts rely on (see
ARCHITECTURE.md)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from engine.accounts import save_user
from engine.errors import EngineError
from engine.settings import SettingsError
from engine.settings import current as current_settings
from engine.views import ROLES, Actor
from storage.db import Database
from web.serving import DEFAULT_KEEPALIVE, DEFAULT_THREADS, DEFAULT_TIMEOUT, DEFAULT_WORKERS

log = logging.getLogger("pdcaflow.cli")

DEMO_PASSWORD = "pdca-demo-2026"
DEMO_USERS = [
    # name, role, groups, e-mail
    ("admin", "admin", [], "admin@example.com"),
    ("lena.lead", "quality_lead", ["quality_lead"], "lena.lead@example.com"),
    ("carl.service", "employee", ["customer_service", "employee"], "carl.service@example.com"),
    ("emil.production", "employee", ["production", "employee"], "emil.production@example.com"),
    ("paula.purchasing", "employee", ["purchasing", "employee"], "paula.purchasing@example.com"),
]


def _db() -> Database:
    settings = current_settings()
    return Database(settings.database_url, instance_dir=settings.instance_dir)


def _runtime():  # type: ignore[no-untyped-def]
    from engine.runtime import Runtime

    return Runtime(_db())


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="log more")
def main(verbose: bool) -> None:
    """PDCA Flow: BPMN workflows from customer complaint to measured improvement."""
    from engine import logs

    try:  # read the configuration now, so a bad variable stops every command before it starts
        settings = current_settings()
    except SettingsError as exc:
        logs.configure(verbose=verbose)
        raise click.ClickException(exc.message) from exc
    logs.configure(settings.log_format, verbose=verbose)


@main.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from storage.migrate import upgrade

    url = _db().url
    upgrade(url)
    click.echo(f"database ready: {_redact(url)}")


@main.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--group", "groups", multiple=True, help="group membership (repeatable)")
@click.option("--email", default=None)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def create_user(name: str, role: str, groups: tuple[str, ...], email: str | None, password_stdin: bool) -> None:
    """Add a user, or update an existing one."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        created = save_user(_db(), name, role, password=password, email=email, groups=list(groups) or None)
    except EngineError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{'created' if created else 'updated'} user {name} ({role})")


@main.command("revoke-tokens")
@click.argument("name")
def revoke_tokens(name: str) -> None:
    """End every API token and every signed-in session of a user (the account stays active)."""
    from engine.credentials import revoke_all

    try:
        revoked = revoke_all(_db(), name)
    except EngineError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked {revoked} API token{'s' if revoked != 1 else ''} of {name}; their sessions are ended")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def deploy(paths: tuple[Path, ...]) -> None:
    """Deploy .bpmn/.dmn files or folders; prints KEY vN per process, FILE:LINE: ELEMENT: warning: message
    per warning, and FILE:LINE: ELEMENT: message per error (exit 1, nothing deployed from that file)."""
    from engine.definitions import collect_files

    files = collect_files(paths)
    if not files:
        raise click.ClickException("no .bpmn or .dmn files found")
    runtime = _runtime()
    loaded = []
    for i, path in enumerate(files, 1):
        if len(files) > 5:
            click.echo(f"[{i}/{len(files)}] reading {path}", err=True)
        loaded.append((str(path), path.read_bytes()))
    report = runtime.deploy(loaded, Actor.system("cli"))
    for result in report.results:
        click.echo(str(result))
    for warning in report.warnings:  # FILE:LINE: ELEMENT: warning: message; they do not stop the deploy
        click.echo(str(warning))
    for problem in report.problems:
        click.echo(str(problem))
    if report.problems:
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-scheduler", is_flag=True, help="do not run the embedded scheduler")
def run(host: str, port: int, no_scheduler: bool) -> None:
    """One-machine server: web app plus the embedded scheduler."""
    from engine.process_memory import limit_malloc_arenas
    from engine.scheduler import build_scheduler
    from web import create_app

    limit_malloc_arenas()  # the embedded scheduler's and waitress's threads (engine/process_memory.py)
    runtime = _runtime()
    app = create_app({"RUNTIME": runtime, "DATABASE": runtime.db})
    scheduler = None
    if not no_scheduler:
        scheduler = build_scheduler(runtime)
        scheduler.start()
    click.echo(f"PDCA Flow on http://{host}:{port}/  (database {_redact(runtime.db.url)}; "
               f"scheduler {'off' if no_scheduler else 'on'})")
    from web.serving import serve_waitress

    try:
        serve_waitress(app, host, port)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def _parse_bind(bind: str) -> str:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {bind!r}", param_hint="--bind")
    return bind


@main.command()
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 64),
              help="request threads per worker")
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT to listen on")
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=click.IntRange(5, 3600),
              help="seconds before a silent worker is restarted")
@click.option("--keepalive", default=DEFAULT_KEEPALIVE, show_default=True, type=click.IntRange(1, 3600),
              help="seconds an idle keep-alive connection stays open (above a proxy's upstream idle timeout)")
def serve(workers: int, threads: int, bind: str, timeout: int, keepalive: int) -> None:
    """Production web server (gunicorn); run the scheduler as `pdcaflow scheduler` processes."""
    import dataclasses

    from engine.settings import configure
    from web.serving import serve_gunicorn, shared_metrics_dir

    bind = _parse_bind(bind)
    url = _db().url

    def build():  # type: ignore[no-untyped-def]
        from web import create_app

        return create_app({"RUNTIME": _runtime()})

    click.echo(f"PDCA Flow on http://{bind}/  (database {_redact(url)}; {workers} workers x {threads} threads; "
               "scheduler: run `pdcaflow scheduler`)")
    settings = current_settings()
    with shared_metrics_dir(settings.metrics_dir) as metrics_dir:
        configure(dataclasses.replace(settings, metrics_dir=metrics_dir))  # the workers inherit it
        serve_gunicorn(build, bind, workers, threads, timeout, keepalive)


@main.command()
def scheduler() -> None:
    """Run the scheduler as its own process (production)."""
    from engine.process_memory import limit_malloc_arenas
    from engine.scheduler import build_scheduler, interval_seconds

    limit_malloc_arenas()  # before the scheduler's threads start (engine/process_memory.py)
    runtime = _runtime()
    click.echo(f"scheduler running every {interval_seconds():g}s against {_redact(runtime.db.url)}")
    build_scheduler(runtime, blocking=True).start()


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Online backup of the SQLite database to PATH (a new file); PostgreSQL: use pg_dump."""
    from storage.backup import BackupError
    from storage.backup import backup as backup_sqlite

    try:
        revision = backup_sqlite(_db().url, path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backup written: {path} ({path.stat().st_size} bytes, schema revision {revision})")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(path: Path) -> None:
    """Replace the SQLite database with the backup at PATH, then migrate it to this version.
    Stop `pdcaflow run`/`serve`/`scheduler` first. PostgreSQL: use pg_restore."""
    from storage.backup import BackupError
    from storage.backup import restore as restore_sqlite
    from storage.migrate import upgrade

    url = _db().url
    try:
        revision = restore_sqlite(url, path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    upgrade(url)  # a backup from an older version gets this version's schema
    click.echo(f"restored {path} (schema revision {revision}) into {_redact(url)}; database ready")


@main.command()
def demo() -> None:
    """Demo users and groups (and sample complaints once the process library is deployed)."""
    db = _db()
    for name, role, groups, email in DEMO_USERS:
        save_user(db, name, role, password=DEMO_PASSWORD, email=email, groups=groups)
    click.echo("demo accounts (password for all: %s):" % DEMO_PASSWORD)
    for name, role, groups, _ in DEMO_USERS:
        click.echo(f"  {name:18} {role:13} {', '.join(groups)}")
    try:
        from engine.demo import seed_demo_instances
    except ImportError:
        return
    from engine.kpis import refresh_facts

    runtime = _runtime()
    created = seed_demo_instances(runtime)
    if created:
        click.echo(f"started {created} sample complaints in several stages")
    refresh_facts(runtime.db)  # so the dashboard has figures before the first scheduler pass


@main.command()
@click.argument("name", type=click.Choice(["engine", "timers", "inbox", "kpis", "dmn-tck", "external-tasks", "corpus",
                                               "timer-lateness", "scheduler-memory", "http"]))
@click.option("--n", "n", default=None, type=int,
              help="size (engine: 2000 instances, timers and timer-lateness: 10000 timers, kpis: 100000 "
                   "complaints, external-tasks: 2000 tasks, scheduler-memory: 100000 instances, "
                   "http: 2000 task completions)")
@click.option("--window", default=600.0, show_default=True, type=float,
              help="timer-lateness: seconds over which the waiting timers come due")
@click.option("--duration", default=60.0, show_default=True, type=float,
              help="timer-lateness: seconds the scheduler runs (from the first due time)")
@click.option("--clients", default=8, show_default=True, type=click.IntRange(1, 256),
              help="http: concurrent HTTP client processes")
@click.option("--workers", default=4, show_default=True, type=int, help="external-tasks: concurrent worker processes")
@click.option("--servers", default=2, show_default=True, type=int, help="external-tasks: web server processes")
@click.option("--max-tasks", default=1, show_default=True, type=int,
              help="external-tasks: maxTasks per fetch (1: the Python client's default; Camunda's Java client: 10)")
@click.option("--ceiling", is_flag=True,
              help="external-tasks: then time bare round trips (two authenticated GETs) with the same workers")
@click.option("--keep-alive", is_flag=True,
              help="external-tasks: each worker reuses one HTTP connection (Camunda's Java client does; the "
                   "Python client opens one per request)")
@click.option("--tasks", "n_tasks", default=1_000_000, show_default=True, type=int,
              help="inbox: human tasks to fill the database with (a tenth of them open)")
@click.option("--reps", default=200, show_default=True, type=int, help="inbox: timed repetitions")
@click.option("--no-fill", is_flag=True, help="inbox: time the --database-url an earlier run filled")
@click.option("--json", "as_json", is_flag=True, help="last line is one JSON object")
@click.option("--database-url", default=None, help="benchmark against this database (default: a temp SQLite file)")
@click.option("--path", "paths", multiple=True, type=click.Path(exists=True),
              help="dmn-tck: a DMN TCK test-case folder, e.g. TestCases/compliance-level-2; "
                   "corpus: a BPMN/DMN file or folder (repeatable)")
def bench(name: str, n: int | None, window: float, duration: float, clients: int, workers: int, servers: int,
          max_tasks: int, ceiling: bool, keep_alive: bool, n_tasks: int, reps: int, no_fill: bool, as_json: bool,
          database_url: str | None, paths: tuple[str, ...]) -> None:
    """Benchmarks (see README)."""
    if name == "corpus":
        _bench_corpus(paths, as_json)
        return

    def progress(done: int) -> None:
        click.echo(f"  ... {done} instances", err=True)

    if name == "dmn-tck":
        from benchmarks.dmn_tck import run_tck

        if len(paths) != 1:
            raise click.UsageError("dmn-tck needs --path DIR (one DMN TCK test-case folder)")
        result = run_tck(paths[0])
        if not as_json:
            for failure in result["failures"]:
                click.echo(f"FAIL {failure['folder']} #{failure['case']} {failure['decision']}: "
                           f"{failure.get('error', '')}")
            click.echo(f"passed {result['passed']}/{result['results']} test results "
                       f"({result['pass_rate']:.1%}) in {result['test_cases']} test cases")
        else:
            click.echo(json.dumps(result))
        return
    if name == "external-tasks":
        from benchmarks.external_tasks import run_external_task_bench

        result = run_external_task_bench(n or 2000, database_url, workers=workers, servers=servers,
                                         max_tasks=max_tasks, ceiling=ceiling, keep_alive=keep_alive)
    elif name == "http":
        from benchmarks.http_completion import run_http_bench

        result = run_http_bench(n or 2000, database_url, clients=clients)
    elif name == "kpis":
        from benchmarks.kpis import run_kpi_bench

        result = run_kpi_bench(n or 100_000, database_url)
    elif name == "timer-lateness":
        from benchmarks.scheduler_load import run_lateness_bench

        result = run_lateness_bench(n or 10_000, database_url, window_s=window, duration_s=duration)
    elif name == "scheduler-memory":
        from benchmarks.scheduler_load import run_memory_bench

        result = run_memory_bench(n or 100_000, database_url)
    elif name == "timers":
        from benchmarks.timers import run_timer_bench

        result = run_timer_bench(n or 10000, database_url)
    elif name == "inbox":
        from benchmarks.inbox import run_inbox_bench

        result = run_inbox_bench(n or n_tasks, database_url, reps, lambda text: click.echo(f"  ... {text}", err=True),
                                 refill=not no_fill)
    else:
        from benchmarks.engine import run_engine_bench

        result = run_engine_bench(n or 2000, database_url, progress)
    if not as_json:
        for key, value in result.items():
            click.echo(f"{key:28} {value}")
    click.echo(json.dumps(result) if as_json else "")


def _bench_corpus(paths: tuple[str, ...], as_json: bool) -> None:
    """Deploy and drive every file under --path (benchmarks/corpus.py); per-file lines, totals, crashes."""
    from benchmarks.corpus import report_lines, run_corpus_bench

    if not paths:
        raise click.UsageError("bench corpus needs at least one --path")
    result = run_corpus_bench(paths, lambda text: click.echo(f"  ... {text}", err=True) if not as_json else None)
    if not as_json:
        for line in report_lines(result):
            click.echo(line)
    click.echo(json.dumps(result, default=str) if as_json else "")


if __name__ == "__main__":
    main()
