"""engine.settings: every environment variable parsed in one place (no database needed)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from engine.escalation import _env_properties, policy_from
from engine.mailer import SmtpConfig
from engine.notifications import OutboxPolicy, base_url
from engine.runtime.timers import TimerPolicy
from engine.scheduler import interval_seconds
from engine.settings import EscalationLevel, Settings, SettingsError, configure, current, reset
from engine.signing import secret_key
from storage.db import Database


def test_defaults_are_the_documented_ones():
    s = Settings.from_env({})
    assert s == Settings()
    assert s.database_url is None and s.instance_dir == Path("instance") and s.secret_key is None
    assert (s.complaint_process, s.timezone, s.secure_cookies) == ("complaint_to_improvement", "UTC", False)
    assert s.base_url == "http://127.0.0.1:5000"
    assert s.scheduler_interval == 10
    assert (s.timer_lease, s.timer_max_attempts, s.timer_backoff, s.timer_batch) == (30, 3, 30, 100)
    assert s.escalation_enabled and (s.escalation_reminder, s.escalation_grace) == ("P1D", "P1D")
    assert s.escalation_to == ("quality_lead",) and s.escalation_levels == ()
    assert (s.smtp_host, s.smtp_port_or_default, s.smtp_from) == (None, 25, "pdcaflow@localhost")
    assert (s.smtp_user, s.smtp_password, s.smtp_starttls, s.smtp_ssl) == (None, None, False, False)
    assert (s.smtp_timeout, s.mail_backoff) == (30, 60)


def test_every_variable_is_read():
    s = Settings.from_env({
        "DATABASE_URL": "postgres://u:p@db/pdca", "PDCAFLOW_INSTANCE_DIR": "/srv/pdca",
        "PDCAFLOW_SECRET_KEY": "k" * 40, "PDCAFLOW_COMPLAINT_PROCESS": "other", "PDCAFLOW_TIMEZONE": "Europe/Berlin",
        "PDCAFLOW_SECURE_COOKIES": "1", "PDCAFLOW_BASE_URL": "https://pdca.example.com/",
        "PDCAFLOW_SCHEDULER_INTERVAL": "2.5", "PDCAFLOW_TIMER_LEASE": "60", "PDCAFLOW_TIMER_MAX_ATTEMPTS": "5",
        "PDCAFLOW_TIMER_BACKOFF": "1.5", "PDCAFLOW_TIMER_BATCH": "10", "PDCAFLOW_ESCALATION": "on",
        "PDCAFLOW_ESCALATION_REMINDER": "PT4H", "PDCAFLOW_ESCALATION_GRACE": "P2D",
        "PDCAFLOW_ESCALATION_TO": "quality_lead, user:boss", "SMTP_HOST": "mail", "SMTP_PORT": "2525",
        "SMTP_FROM": "pdca@example.com", "SMTP_USER": "u", "SMTP_PASSWORD": "p", "SMTP_STARTTLS": "yes",
        "SMTP_SSL": "false", "SMTP_TIMEOUT": "5", "PDCAFLOW_MAIL_BACKOFF": "120",
    })
    assert s.database_url == "postgres://u:p@db/pdca"  # storage normalises it, not settings
    assert s.instance_dir == Path("/srv/pdca") and s.secret_key == "k" * 40
    assert (s.complaint_process, s.timezone, s.secure_cookies) == ("other", "Europe/Berlin", True)
    assert s.base_url == "https://pdca.example.com"  # trailing slash dropped: links append "/tasks/…"
    assert s.scheduler_interval == 2.5
    assert (s.timer_lease, s.timer_max_attempts, s.timer_backoff, s.timer_batch) == (60, 5, 1.5, 10)
    assert (s.escalation_reminder, s.escalation_grace, s.escalation_to) == ("PT4H", "P2D", ("quality_lead", "user:boss"))
    assert (s.smtp_host, s.smtp_port_or_default, s.smtp_from, s.smtp_user, s.smtp_password) == (
        "mail", 2525, "pdca@example.com", "u", "p")
    assert (s.smtp_starttls, s.smtp_ssl, s.smtp_timeout, s.mail_backoff) == (True, False, 5, 120)


def test_empty_variables_count_as_unset():
    names = ["DATABASE_URL", "PDCAFLOW_INSTANCE_DIR", "PDCAFLOW_SECRET_KEY", "PDCAFLOW_COMPLAINT_PROCESS",
             "PDCAFLOW_TIMEZONE", "PDCAFLOW_SECURE_COOKIES", "PDCAFLOW_BASE_URL", "PDCAFLOW_SCHEDULER_INTERVAL",
             "PDCAFLOW_TIMER_LEASE", "PDCAFLOW_TIMER_BATCH", "PDCAFLOW_ESCALATION_TO", "PDCAFLOW_ESCALATION_LEVEL2",
             "SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMTP_SSL", "SMTP_TIMEOUT", "PDCAFLOW_MAIL_BACKOFF"]
    assert Settings.from_env(dict.fromkeys(names, "")) == Settings()


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("none", False)])
def test_booleans(raw, expected):
    assert Settings.from_env({"SMTP_SSL": raw}).smtp_ssl is expected
    assert Settings.from_env({"PDCAFLOW_SECURE_COOKIES": raw}).secure_cookies is expected


def test_smtp_port_follows_the_tls_mode_unless_given():
    assert Settings.from_env({"SMTP_SSL": "1"}).smtp_port_or_default == 465
    assert Settings.from_env({"SMTP_STARTTLS": "1"}).smtp_port_or_default == 587
    assert Settings.from_env({"SMTP_SSL": "1", "SMTP_PORT": "1465"}).smtp_port_or_default == 1465


@pytest.mark.parametrize("name, raw, message", [
    ("PDCAFLOW_SCHEDULER_INTERVAL", "x", "PDCAFLOW_SCHEDULER_INTERVAL must be a number of seconds, got 'x'"),
    ("PDCAFLOW_SCHEDULER_INTERVAL", "-1", "PDCAFLOW_SCHEDULER_INTERVAL must be a number of seconds, got '-1'"),
    ("PDCAFLOW_SCHEDULER_INTERVAL", "nan", "PDCAFLOW_SCHEDULER_INTERVAL must be a number of seconds, got 'nan'"),
    ("SMTP_TIMEOUT", "soon", "SMTP_TIMEOUT must be a number of seconds, got 'soon'"),
    ("PDCAFLOW_MAIL_BACKOFF", "1m", "PDCAFLOW_MAIL_BACKOFF must be a number of seconds, got '1m'"),
    ("SMTP_PORT", "smtp", "SMTP_PORT must be a port number (1-65535), got 'smtp'"),
    ("SMTP_PORT", "70000", "SMTP_PORT must be a port number (1-65535), got '70000'"),
    ("SMTP_SSL", "maybe", "SMTP_SSL must be on or off (1/0, true/false, yes/no), got 'maybe'"),
    ("SMTP_STARTTLS", "ture", "SMTP_STARTTLS must be on or off (1/0, true/false, yes/no), got 'ture'"),
    ("PDCAFLOW_SECURE_COOKIES", "sure", "PDCAFLOW_SECURE_COOKIES must be on or off (1/0, true/false, yes/no), got 'sure'"),
    ("PDCAFLOW_ESCALATION", "later", "PDCAFLOW_ESCALATION must be on or off (1/0, true/false, yes/no), got 'later'"),
    ("PDCAFLOW_TIMEZONE", "Mars/Olympus", "PDCAFLOW_TIMEZONE must be an IANA time zone name such as UTC or "
                                          "Europe/Berlin, got 'Mars/Olympus'"),
])
def test_bad_values_fail_naming_the_variable_and_the_form(name, raw, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: raw})
    assert caught.value.message == message


@pytest.mark.parametrize("name, raw, field, default", [
    ("PDCAFLOW_TIMER_LEASE", "5m", "timer_lease", 30),
    ("PDCAFLOW_TIMER_BACKOFF", "-3", "timer_backoff", 30),
    ("PDCAFLOW_TIMER_MAX_ATTEMPTS", "three", "timer_max_attempts", 3),
    ("PDCAFLOW_TIMER_BATCH", "2.5", "timer_batch", 100),
])
def test_timer_knobs_warn_and_keep_their_default(caplog, name, raw, field, default):
    with caplog.at_level(logging.WARNING, "pdcaflow.settings"):
        s = Settings.from_env({name: raw})
    assert getattr(s, field) == default
    assert name in caplog.text and repr(raw) in caplog.text and f"using {default}" in caplog.text


def test_escalation_levels_and_recipients():
    s = Settings.from_env({"PDCAFLOW_ESCALATION_LEVEL3": "P7D", "PDCAFLOW_ESCALATION_LEVEL3_TO": "admin, user:ceo",
                           "PDCAFLOW_ESCALATION_LEVEL2": "P2D", "PDCAFLOW_ESCALATION_LEVEL9_TO": "board",
                           "PDCAFLOW_ESCALATION_LEVEL10": "P30D"})  # only 2…9 exist
    assert s.escalation_levels == (EscalationLevel(2, "P2D", ()), EscalationLevel(3, "P7D", ("admin", "user:ceo")),
                                   EscalationLevel(9, None, ("board",)))
    props = _env_properties(s)
    assert props["escalation.level2"] == "P2D" and "escalation.level2.to" not in props
    assert (props["escalation.level3"], props["escalation.level3.to"]) == ("P7D", "admin,user:ceo")
    assert props["escalation.level9.to"] == "board" and "escalation.level9" not in props
    policy = policy_from(props)
    assert [(lv.name, lv.offset, lv.to) for lv in policy.levels] == [
        ("reminder", -timedelta(days=1), ()), ("overdue", timedelta(0), ()),
        ("escalation", timedelta(days=1), ("quality_lead",)), ("escalation_2", timedelta(days=2), ("quality_lead",)),
        ("escalation_3", timedelta(days=7), ("admin", "user:ceo"))]


@pytest.mark.parametrize("raw", ["off", "0", "none", ""])
def test_escalation_levels_switch_off(raw):
    # an empty reminder/grace/switch has always meant "off" (unlike every other variable)
    s = Settings.from_env({"PDCAFLOW_ESCALATION_REMINDER": raw, "PDCAFLOW_ESCALATION_GRACE": raw})
    assert (s.escalation_reminder, s.escalation_grace) == (None, None)
    assert [lv.name for lv in policy_from(_env_properties(s)).levels] == ["overdue"]
    switched_off = Settings.from_env({"PDCAFLOW_ESCALATION": raw})
    assert not switched_off.escalation_enabled and not policy_from(_env_properties(switched_off)).enabled


def test_bad_escalation_duration_warns_and_switches_that_level_off(caplog):
    with caplog.at_level(logging.WARNING, "pdcaflow.settings"):
        s = Settings.from_env({"PDCAFLOW_ESCALATION_GRACE": "two days", "PDCAFLOW_ESCALATION_LEVEL4": "1 week"})
    assert s.escalation_grace is None and s.escalation_levels == ()
    assert s.escalation_reminder == "P1D"
    assert "PDCAFLOW_ESCALATION_GRACE must be an ISO 8601 duration such as P1D or PT4H, or off, got 'two days'" \
        in caplog.text
    assert "PDCAFLOW_ESCALATION_LEVEL4" in caplog.text


def test_current_reads_once_and_configure_replaces_it(monkeypatch):
    monkeypatch.setenv("PDCAFLOW_BASE_URL", "https://one.example/")
    first = current()
    monkeypatch.setenv("PDCAFLOW_BASE_URL", "https://two.example")
    assert current() is first and base_url() == "https://one.example"  # cached: read once per process
    reset()
    assert base_url() == "https://two.example"
    configure(Settings(base_url="https://three.example"))
    assert base_url() == "https://three.example"


def test_current_raises_until_the_environment_is_fixed(monkeypatch):
    monkeypatch.setenv("PDCAFLOW_SCHEDULER_INTERVAL", "soon")
    with pytest.raises(SettingsError, match="PDCAFLOW_SCHEDULER_INTERVAL"):
        current()
    monkeypatch.setenv("PDCAFLOW_SCHEDULER_INTERVAL", "5")
    assert current().scheduler_interval == 5  # a failed read is not cached


def test_consumers_take_their_values_from_the_settings(tmp_path):
    configure(Settings(scheduler_interval=0.01, timer_lease=60, timer_max_attempts=0, timer_backoff=2,
                       timer_batch=7, smtp_host="mail", smtp_starttls=True, smtp_timeout=4, mail_backoff=9,
                       secret_key=None, instance_dir=tmp_path / "inst"))
    assert interval_seconds() == 0.2  # clamped: a busy loop helps no one
    assert TimerPolicy.from_env() == TimerPolicy(lease=timedelta(seconds=60), max_attempts=1,
                                                 backoff=timedelta(seconds=2), batch=7)
    assert SmtpConfig.from_env() == SmtpConfig(host="mail", port=587, starttls=True, timeout=4)
    assert OutboxPolicy.from_env().backoff == timedelta(seconds=9)
    generated = secret_key()
    assert (tmp_path / "inst" / "secret_key").read_text().strip() == generated
    configure(Settings(secret_key="from-env"))
    assert secret_key(tmp_path / "elsewhere") == "from-env"


def test_storage_gets_its_url_and_folder_from_the_caller(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://ignored/by-storage")
    db = Database(None, instance_dir=tmp_path / "inst")  # storage itself never reads the environment
    try:
        assert db.url == f"sqlite:///{(tmp_path / 'inst' / 'pdcaflow.sqlite3').resolve()}"
    finally:
        db.dispose()
    pg = Database("postgres://u:p@db/pdca")
    try:
        assert pg.url == "postgresql+psycopg://u:p@db/pdca"
    finally:
        pg.dispose()


def test_connector_settings():
    s = Settings.from_env({
        "PDCAFLOW_HTTP_ALLOW": "https://erp.example.com/api/, http://10.0.0.5:8080/",
        "PDCAFLOW_HTTP_HEADERS": '{"https://erp.example.com/api/": {"Authorization": "Bearer t"}}',
        "PDCAFLOW_HTTP_TIMEOUT": "3", "PDCAFLOW_CONNECTOR_RETRIES": "5", "PDCAFLOW_CONNECTOR_BACKOFF": "10"})
    assert s.http_allow == ("https://erp.example.com/api/", "http://10.0.0.5:8080/")
    assert s.http_headers == (("https://erp.example.com/api/", (("Authorization", "Bearer t"),)),)
    assert (s.http_timeout, s.connector_retries, s.connector_backoff) == (3, 5, 10)
    assert (Settings().http_allow, Settings().connector_retries) == ((), 3)  # nothing is allowed by default
    with pytest.raises(SettingsError, match="PDCAFLOW_HTTP_HEADERS"):
        Settings.from_env({"PDCAFLOW_HTTP_HEADERS": '{"https://x/": "not an object"}'})


def test_operations_settings():
    s = Settings.from_env({})
    assert (s.ack_limit, s.metrics_token, s.metrics_allow, s.metrics_dir) == (3, None, ("127.0.0.1/32", "::1/128"),
                                                                                 None)
    s = Settings.from_env({"PDCAFLOW_ACK_LIMIT": "0", "PDCAFLOW_METRICS_ALLOW": "10.1.2.3, 192.168.0.0/16",
                           "PDCAFLOW_METRICS_TOKEN": "t", "PROMETHEUS_MULTIPROC_DIR": "/run/pdcaflow-metrics"})
    assert s.ack_limit == 0 and s.metrics_allow == ("10.1.2.3/32", "192.168.0.0/16") and s.metrics_token == "t"
    assert str(s.metrics_dir) == "/run/pdcaflow-metrics"
    assert Settings.from_env({"PDCAFLOW_METRICS_ALLOW": "none"}).metrics_allow == ()
    with pytest.raises(SettingsError, match="PDCAFLOW_METRICS_ALLOW must be addresses or networks"):
        Settings.from_env({"PDCAFLOW_METRICS_ALLOW": "localhost"})
    with pytest.raises(SettingsError, match="PDCAFLOW_ACK_LIMIT must be a whole number, 0 or more"):
        Settings.from_env({"PDCAFLOW_ACK_LIMIT": "-1"})
