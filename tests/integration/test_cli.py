"""The `pdcaflow` command line, run as a real subprocess against a real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]


def pdcaflow(tmp_path: Path, *args: str, stdin: str | None = None, db_url: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PDCAFLOW_INSTANCE_DIR"] = str(tmp_path / "instance")
    env["PYTHONPATH"] = str(ROOT)
    env.pop("DATABASE_URL", None)
    if db_url:
        env["DATABASE_URL"] = db_url
    return subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=tmp_path, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_init_db_is_idempotent_and_creates_sqlite_under_instance(tmp_path):
    first = pdcaflow(tmp_path, "init-db")
    second = pdcaflow(tmp_path, "init-db")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "instance" / "pdcaflow.sqlite3").exists()
    assert "database ready" in second.stdout


def test_deploy_prints_versions_then_unchanged(tmp_path):
    pdcaflow(tmp_path, "init-db")
    first = pdcaflow(tmp_path, "deploy", str(FIXTURES / "simple_review.bpmn"))
    again = pdcaflow(tmp_path, "deploy", str(FIXTURES / "simple_review.bpmn"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines() == ["simple_review v1"]
    assert again.stdout.strip().splitlines() == ["simple_review v1 unchanged"]
    changed = tmp_path / "simple_review.bpmn"
    changed.write_text((FIXTURES / "simple_review.bpmn").read_text().replace("Assess request", "Assess the request"))
    third = pdcaflow(tmp_path, "deploy", str(changed))
    assert third.stdout.strip().splitlines() == ["simple_review v2"]


def test_deploy_syntax_error_names_line_12_and_exits_1(tmp_path):
    pdcaflow(tmp_path, "init-db")
    lines = (FIXTURES / "simple_review.bpmn").read_text().splitlines()
    lines[11] = lines[11] + " a & b </oops"  # line 12: a bare ampersand and a stray end tag
    broken = tmp_path / "broken.bpmn"
    broken.write_text("\n".join(lines))
    result = pdcaflow(tmp_path, "deploy", str(broken))
    assert result.returncode == 1
    problem_lines = [line for line in result.stdout.splitlines() if line.startswith(str(broken))]
    assert problem_lines and all(":" in line for line in problem_lines)
    assert problem_lines[0].startswith(f"{broken}:12: xml: malformed XML")
    listing = pdcaflow(tmp_path, "deploy", str(FIXTURES / "simple_review.bpmn"))
    assert listing.stdout.strip() == "simple_review v1"  # nothing of the broken file was deployed


def test_deploy_refuses_xxe_within_a_second_without_reading_files(tmp_path):
    pdcaflow(tmp_path, "init-db")
    evil = tmp_path / "evil.bpmn"
    evil.write_text('<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
                    '<bpmn:process id="p" isExecutable="true"><bpmn:documentation>&x;</bpmn:documentation>'
                    '</bpmn:process></bpmn:definitions>')
    started = time.perf_counter()
    result = pdcaflow(tmp_path, "deploy", str(evil))
    assert result.returncode == 1
    assert f"{evil}:2: DOCTYPE:" in result.stdout
    assert "root:" not in result.stdout + result.stderr
    assert time.perf_counter() - started < 10  # whole interpreter start included; the refusal itself is instant


def test_create_user_reads_password_from_stdin_and_updates(tmp_path):
    pdcaflow(tmp_path, "init-db")
    created = pdcaflow(tmp_path, "create-user", "bob", "--role", "employee", "--group", "production",
                       "--email", "bob@example.com", "--password-stdin", stdin="long-enough-pw\n")
    assert created.returncode == 0, created.stderr
    assert "created user bob" in created.stdout
    updated = pdcaflow(tmp_path, "create-user", "bob", "--role", "quality_lead", "--password-stdin",
                       stdin="another-long-pw\n")
    assert "updated user bob" in updated.stdout
    short = pdcaflow(tmp_path, "create-user", "eve", "--role", "employee", "--password-stdin", stdin="short\n")
    assert short.returncode != 0 and "at least" in short.stderr

    from engine.accounts import authenticate
    from storage.db import Database

    db = Database(f"sqlite:///{tmp_path / 'instance' / 'pdcaflow.sqlite3'}")
    actor = authenticate(db, "bob", "another-long-pw")
    assert actor is not None and actor.role == "quality_lead" and "production" in actor.groups
    assert authenticate(db, "bob", "long-enough-pw") is None
    db.dispose()


def test_demo_creates_accounts_that_can_sign_in(tmp_path):
    pdcaflow(tmp_path, "init-db")
    first = pdcaflow(tmp_path, "demo")
    second = pdcaflow(tmp_path, "demo")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "lena.lead" in first.stdout

    from engine.accounts import authenticate
    from storage.db import Database
    from web.cli import DEMO_PASSWORD

    db = Database(f"sqlite:///{tmp_path / 'instance' / 'pdcaflow.sqlite3'}")
    assert authenticate(db, "lena.lead", DEMO_PASSWORD).role == "quality_lead"
    db.dispose()


@pytest.mark.slow
def test_bench_engine_prints_json_last_line(tmp_path):
    result = pdcaflow(tmp_path, "bench", "engine", "--n", "30", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["db"] == "sqlite"
    assert figures["raw_ms_per_instance"] > 0 and figures["persisted_ms_per_instance"] > 0
    assert figures["ratio"] == pytest.approx(figures["persisted_ms_per_instance"] / figures["raw_ms_per_instance"],
                                             rel=0.01)


def test_a_bad_variable_stops_every_command_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PDCAFLOW_SCHEDULER_INTERVAL", "soon")
    result = pdcaflow(tmp_path, "init-db")
    assert result.returncode == 1
    assert "PDCAFLOW_SCHEDULER_INTERVAL must be a number of seconds, got 'soon'" in result.stderr
    assert not (tmp_path / "instance").exists()  # nothing was created


def test_create_worker_account(tmp_path):
    pdcaflow(tmp_path, "init-db")
    created = pdcaflow(tmp_path, "create-user", "erp-bot", "--role", "worker", "--password-stdin",
                       stdin="long-enough-pw\n")
    assert created.returncode == 0, created.stderr
    assert "created user erp-bot (worker)" in created.stdout

    from engine.accounts import authenticate
    from storage.db import Database

    db = Database(f"sqlite:///{tmp_path / 'instance' / 'pdcaflow.sqlite3'}")
    actor = authenticate(db, "erp-bot", "long-enough-pw")
    assert actor is not None and actor.role == "worker"
