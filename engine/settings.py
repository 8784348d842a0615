"""The installation's configuration: every environment variable PDCA Flow reads, parsed in one place.

`current()` reads `os.environ` once per process and caches the result; `configure()` replaces it
(tests, the CLI) and `reset()` makes the next `current()` read the environment again. Nothing else in
engine/, storage/ or web/ looks at the environment: storage receives its URL from the caller.

Rules every variable follows: an empty value counts as unset (except PDCAFLOW_ESCALATION and the
escalation durations, where empty has always meant "off"); a value that cannot be parsed raises
`SettingsError` naming the variable and the expected form, except the timer tuning knobs and the
escalation durations, which keep their old behaviour: a warning, then the default (timers) or that
level switched off (escalation).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.errors import EngineError
from storage.db import DEFAULT_INSTANCE_DIR

log = logging.getLogger("pdcaflow.settings")

T = TypeVar("T")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "none")
# words that switch an escalation level (or escalation as a whole) off; "" included, as always
OFF_WORDS = ("", "0", "off", "none", "false", "no")
MAX_ESCALATION_LEVEL = 9


class SettingsError(EngineError):
    """An environment variable holds a value that cannot be used; the message names it."""

    code = "bad_setting"


@dataclass(frozen=True)
class EscalationLevel:
    """`PDCAFLOW_ESCALATION_LEVEL<n>` (an ISO 8601 duration after due, None if unset or off) and
    `…_LEVEL<n>_TO` (recipients; empty: those of the first escalation)."""

    n: int
    after: str | None = None
    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Typed configuration; the defaults are the ones documented in README § Configuration."""

    database_url: str | None = None  # None: the SQLite file under instance_dir
    instance_dir: Path = DEFAULT_INSTANCE_DIR
    secret_key: str | None = None  # None: generated into instance_dir (engine.signing)
    complaint_process: str = "complaint_to_improvement"
    timezone: str = "UTC"
    secure_cookies: bool = False
    base_url: str = "http://127.0.0.1:5000"  # without a trailing slash
    scheduler_interval: float = 10.0  # seconds
    timer_lease: float = 30.0  # seconds: every scheduler lease, renewed by its heartbeat (engine/heartbeat.py)
    timer_max_attempts: int = 3
    timer_backoff: float = 30.0  # seconds
    timer_batch: int = 100
    escalation_enabled: bool = True
    escalation_reminder: str | None = "P1D"  # ISO 8601 durations; None: that level is off
    escalation_grace: str | None = "P1D"
    # a reminder never comes before this share of the task's time (creation to due) has passed
    escalation_reminder_elapsed: float = 0.5
    escalation_to: tuple[str, ...] = ("quality_lead",)
    escalation_levels: tuple[EscalationLevel, ...] = ()
    smtp_host: str | None = None  # None: no e-mail, in-app notifications only
    smtp_port: int | None = None  # None: 465 with smtp_ssl, 587 with smtp_starttls, else 25
    smtp_from: str = "pdcaflow@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = 30.0  # seconds
    mail_backoff: float = 60.0  # seconds before the first retry of a failed delivery
    # sandboxed scripts and expressions (engine/sandbox.py): limits of one evaluation
    sandbox_time_limit: float = 2.0  # seconds of wall clock, enforced inside long C calls too
    sandbox_memory_mb: int = 256  # what one evaluation may allocate in total
    sandbox_max_steps: int = 200_000  # traced lines/calls, so an endless loop names its line
    sandbox_max_data_bytes: int = 1_000_000  # serialized size of task data (shared references expanded)
    sandbox_max_log_chars: int = 10_000  # print() output kept per script run
    # built-in connectors (engine/connectors.py): pdcaflow.http may call only these URL prefixes
    http_allow: tuple[str, ...] = ()
    http_headers: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # (URL prefix, headers)
    http_timeout: float = 10.0  # seconds
    connector_retries: int = 3  # attempts of a connector task before its incident
    connector_backoff: float = 30.0  # seconds before the first retry (doubles, engine/backoff.py)
    # operations (README § Running in production)
    log_format: str = "text"  # "json": one JSON object per line (engine/logs.py)
    metrics_token: str | None = None  # a bearer token that may read /metrics from anywhere
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")  # who may read /metrics without it
    metrics_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR: per-request metrics shared by workers
    ack_limit: int = 3  # customer acknowledgements per recipient address per 24 hours; 0: no limit
    # sign-in (engine/credentials.py): the client address is X-Forwarded-For's only when this many
    # reverse proxies in front of PDCA Flow set it (werkzeug ProxyFix); 0: the socket's peer address
    trusted_proxies: int = 0
    signin_attempts: int = 10  # per (client address, user name) and window
    signin_address_attempts: int = 100  # per client address over all user names and window
    signin_window: float = 300.0  # seconds
    # attachments on cases (engine/case_notes.py): size of one file, and the types allowed as sniffed
    # from the content (not the name): families image, pdf, office, text, or exact MIME types
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachment_types: tuple[str, ...] = ("image", "pdf", "office", "text")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Parse `environ`; raises SettingsError for the first unusable value."""
        env = _Reader(environ)
        d = cls()  # the defaults
        return cls(
            database_url=env.get("DATABASE_URL", parse_text, d.database_url),
            instance_dir=env.get("PDCAFLOW_INSTANCE_DIR", Path, d.instance_dir),
            secret_key=env.get("PDCAFLOW_SECRET_KEY", parse_text, d.secret_key),
            complaint_process=env.get("PDCAFLOW_COMPLAINT_PROCESS", parse_text, d.complaint_process),
            timezone=env.get("PDCAFLOW_TIMEZONE", parse_timezone, d.timezone),
            secure_cookies=env.get("PDCAFLOW_SECURE_COOKIES", parse_bool, d.secure_cookies),
            base_url=env.get("PDCAFLOW_BASE_URL", parse_url, d.base_url),
            scheduler_interval=env.get("PDCAFLOW_SCHEDULER_INTERVAL", parse_seconds, d.scheduler_interval),
            # the timer knobs have always fallen back to their defaults with a warning
            timer_lease=env.lenient("PDCAFLOW_TIMER_LEASE", parse_seconds, d.timer_lease),
            timer_max_attempts=env.lenient("PDCAFLOW_TIMER_MAX_ATTEMPTS", parse_count, d.timer_max_attempts),
            timer_backoff=env.lenient("PDCAFLOW_TIMER_BACKOFF", parse_seconds, d.timer_backoff),
            timer_batch=env.lenient("PDCAFLOW_TIMER_BATCH", parse_count, d.timer_batch),
            escalation_enabled=env.escalation_switch("PDCAFLOW_ESCALATION", d.escalation_enabled),
            escalation_reminder=env.escalation_duration("PDCAFLOW_ESCALATION_REMINDER", d.escalation_reminder),
            escalation_grace=env.escalation_duration("PDCAFLOW_ESCALATION_GRACE", d.escalation_grace),
            escalation_reminder_elapsed=env.get("PDCAFLOW_ESCALATION_REMINDER_ELAPSED", parse_fraction,
                                                d.escalation_reminder_elapsed),
            escalation_to=env.get("PDCAFLOW_ESCALATION_TO", parse_list, d.escalation_to) or d.escalation_to,
            escalation_levels=env.escalation_levels(),
            smtp_host=env.get("SMTP_HOST", parse_text, d.smtp_host),
            smtp_port=env.get("SMTP_PORT", parse_port, d.smtp_port),
            smtp_from=env.get("SMTP_FROM", parse_text, d.smtp_from),
            smtp_user=env.get("SMTP_USER", parse_text, d.smtp_user),
            smtp_password=env.get("SMTP_PASSWORD", parse_text, d.smtp_password),
            smtp_starttls=env.get("SMTP_STARTTLS", parse_bool, d.smtp_starttls),
            smtp_ssl=env.get("SMTP_SSL", parse_bool, d.smtp_ssl),
            smtp_timeout=env.get("SMTP_TIMEOUT", parse_seconds, d.smtp_timeout),
            mail_backoff=env.get("PDCAFLOW_MAIL_BACKOFF", parse_seconds, d.mail_backoff),
            sandbox_time_limit=env.get("PDCAFLOW_SANDBOX_TIME_LIMIT", parse_positive_seconds, d.sandbox_time_limit),
            sandbox_memory_mb=env.get("PDCAFLOW_SANDBOX_MEMORY_MB", parse_positive_count, d.sandbox_memory_mb),
            sandbox_max_steps=env.get("PDCAFLOW_SANDBOX_MAX_STEPS", parse_positive_count, d.sandbox_max_steps),
            sandbox_max_data_bytes=env.get("PDCAFLOW_SANDBOX_MAX_DATA_BYTES", parse_positive_count,
                                           d.sandbox_max_data_bytes),
            sandbox_max_log_chars=env.get("PDCAFLOW_SANDBOX_MAX_LOG_CHARS", parse_positive_count,
                                          d.sandbox_max_log_chars),
            http_allow=env.get("PDCAFLOW_HTTP_ALLOW", parse_list, d.http_allow),
            http_headers=env.get("PDCAFLOW_HTTP_HEADERS", parse_http_headers, d.http_headers),
            http_timeout=env.get("PDCAFLOW_HTTP_TIMEOUT", parse_seconds, d.http_timeout),
            connector_retries=env.get("PDCAFLOW_CONNECTOR_RETRIES", parse_count, d.connector_retries),
            connector_backoff=env.get("PDCAFLOW_CONNECTOR_BACKOFF", parse_seconds, d.connector_backoff),
            log_format=env.get("PDCAFLOW_LOG_FORMAT", parse_log_format, d.log_format),
            metrics_token=env.get("PDCAFLOW_METRICS_TOKEN", parse_text, d.metrics_token),
            metrics_allow=env.get("PDCAFLOW_METRICS_ALLOW", parse_networks, d.metrics_allow),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", Path, d.metrics_dir),
            ack_limit=env.get("PDCAFLOW_ACK_LIMIT", parse_count_or_zero, d.ack_limit),
            trusted_proxies=env.get("PDCAFLOW_TRUSTED_PROXIES", parse_proxy_hops, d.trusted_proxies),
            signin_attempts=env.get("PDCAFLOW_SIGNIN_ATTEMPTS", parse_positive_count, d.signin_attempts),
            signin_address_attempts=env.get("PDCAFLOW_SIGNIN_ADDRESS_ATTEMPTS", parse_positive_count,
                                            d.signin_address_attempts),
            signin_window=env.get("PDCAFLOW_SIGNIN_WINDOW", parse_positive_seconds, d.signin_window),
            attachment_max_bytes=env.get("PDCAFLOW_ATTACHMENT_MAX_BYTES", parse_positive_count,
                                         d.attachment_max_bytes),
            attachment_types=env.get("PDCAFLOW_ATTACHMENT_TYPES", parse_list, d.attachment_types)
            or d.attachment_types,
        )

    @property
    def smtp_port_or_default(self) -> int:
        """The SMTP port to connect to: the configured one, else the usual port of the TLS mode."""
        if self.smtp_port is not None:
            return self.smtp_port
        return 465 if self.smtp_ssl else 587 if self.smtp_starttls else 25


# ---------------------------------------------------------------------- one parser per type
# Each takes the raw (non-empty) text and returns the value, or raises ValueError whose message
# completes "NAME must be …".

def parse_text(raw: str) -> str:
    return raw


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("on or off (1/0, true/false, yes/no)")


def parse_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError("a number of seconds")
    return value


def parse_fraction(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:  # NaN fails too
        raise ValueError("a fraction from 0 to 1, e.g. 0.5")
    return value


def parse_count(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("a whole number") from None


def parse_positive_seconds(raw: str) -> float:
    value = parse_seconds(raw)
    if value <= 0:
        raise ValueError("a positive number of seconds")
    return value


def parse_positive_count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError("a positive whole number")
    return value


def parse_count_or_zero(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError("a whole number, 0 or more")
    return value


def parse_proxy_hops(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 10:
        raise ValueError("the number of trusted reverse proxies (0-10)")
    return value


def parse_log_format(raw: str) -> str:
    word = raw.strip().lower()
    if word not in ("text", "json"):
        raise ValueError("text or json")
    return word


def parse_networks(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks (CIDR), normalised; "none" allows no address."""
    import ipaddress

    if raw.strip().lower() in OFF_WORDS:
        return ()
    try:
        return tuple(str(ipaddress.ip_network(part, strict=False)) for part in parse_list(raw))
    except ValueError:
        raise ValueError("addresses or networks such as 127.0.0.1, 10.0.0.0/8, ::1 (or none)") from None


def parse_port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError("a port number (1-65535)")
    return port


def parse_list(raw: str) -> tuple[str, ...]:
    """A comma-separated list; blanks are dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ValueError, LookupError):
        raise ValueError("an IANA time zone name such as UTC or Europe/Berlin") from None
    return raw


def parse_http_headers(raw: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """A JSON object: URL prefix -> {header: value} (e.g. an API key for one system)."""
    import json

    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
            isinstance(h, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in h.items())
            for h in value.values()):
        raise ValueError('a JSON object of URL prefix -> {"Header": "value"}')
    return tuple((str(prefix), tuple(sorted(headers.items()))) for prefix, headers in value.items())


def parse_url(raw: str) -> str:
    return raw.rstrip("/")


def parse_duration(raw: str) -> str | None:
    """An ISO 8601 duration (checked with the parser escalation uses), or an off word: None."""
    value = raw.strip()
    if value.lower() in OFF_WORDS:
        return None
    try:
        TimerEventDefinition.parse_iso_duration(value)
    except Exception:  # SpiffWorkflow raises a bare Exception
        raise ValueError("an ISO 8601 duration such as P1D or PT4H, or off") from None
    return value


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value if value else None  # empty counts as unset

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{name} must be {exc}, got {raw!r}") from None

    def lenient(self, name: str, parse: Callable[[str], T], default: T) -> T:
        try:
            return self.get(name, parse, default)
        except SettingsError as exc:
            log.warning("%s; using %s", exc.message, default)
            return default

    def escalation_switch(self, name: str, default: bool) -> bool:
        raw = self.environ.get(name)
        if raw is not None and not raw.strip():
            return False
        return self.get(name, parse_bool, default)

    def escalation_levels(self) -> tuple[EscalationLevel, ...]:
        levels = (EscalationLevel(n, self.escalation_duration(f"PDCAFLOW_ESCALATION_LEVEL{n}", None),
                                  self.get(f"PDCAFLOW_ESCALATION_LEVEL{n}_TO", parse_list, ()))
                  for n in range(2, MAX_ESCALATION_LEVEL + 1))
        # a _TO alone is kept: it names the recipients of a level a process switches on
        return tuple(level for level in levels if level.after is not None or level.to)

    def escalation_duration(self, name: str, default: str | None) -> str | None:
        raw = self.environ.get(name)
        if raw is not None and not raw.strip():
            return None
        try:
            return self.get(name, parse_duration, default)
        except SettingsError as exc:  # as before: a level that cannot be read is switched off
            log.warning("%s; that escalation level is off", exc.message)
            return None


# ---------------------------------------------------------------------- the process-wide instance
_current: Settings | None = None


def current() -> Settings:
    """The settings of this process, read from the environment on first use."""
    global _current
    if _current is None:
        # two threads racing here both parse the same environment; either result is the same
        _current = Settings.from_env()
    return _current


def configure(settings: Settings) -> Settings:
    """Use `settings` from now on instead of the environment (tests, the CLI)."""
    global _current
    _current = settings
    return settings


def reset() -> None:
    """Forget the cached settings: the next `current()` reads the environment again."""
    global _current
    _current = None
