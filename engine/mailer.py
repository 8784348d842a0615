"""Outgoing e-mail over SMTP (smtplib), configured from the environment.

`SMTP_HOST` (no host: e-mail is off), `SMTP_PORT` (25, or 587 with STARTTLS, 465 with SMTP_SSL),
`SMTP_FROM` (default `pdcaflow@localhost`), optional `SMTP_USER`/`SMTP_PASSWORD`, `SMTP_STARTTLS=1`,
`SMTP_SSL=1`, `SMTP_TIMEOUT` (seconds, default 30).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate


class MailerNotConfigured(Exception):
    """SMTP_HOST is not set: e-mail delivery is switched off."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None
    port: int = 25
    sender: str = "pdcaflow@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0

    @classmethod
    def from_env(cls) -> SmtpConfig:
        starttls, use_ssl = _flag("SMTP_STARTTLS"), _flag("SMTP_SSL")
        default_port = 465 if use_ssl else 587 if starttls else 25
        return cls(
            host=os.environ.get("SMTP_HOST") or None,
            port=int(os.environ.get("SMTP_PORT") or default_port),
            sender=os.environ.get("SMTP_FROM") or "pdcaflow@localhost",
            user=os.environ.get("SMTP_USER") or None,
            password=os.environ.get("SMTP_PASSWORD") or None,
            starttls=starttls,
            use_ssl=use_ssl,
            timeout=float(os.environ.get("SMTP_TIMEOUT") or 30),
        )


def build_message(config: SmtpConfig, to: str, subject: str, text: str, html: str | None,
                  message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id  # stable per outbox row, so a receiving MTA can drop a replay
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send(config: SmtpConfig, message: EmailMessage) -> None:
    """Deliver one message; raises on any failure (the outbox retries)."""
    if not config.host:
        raise MailerNotConfigured("SMTP_HOST is not set")
    context = ssl.create_default_context()
    if config.use_ssl:
        client: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    with client:
        if config.starttls and not config.use_ssl:
            client.starttls(context=context)
        if config.user:
            client.login(config.user, config.password or "")
        client.send_message(message)
