"""Outgoing e-mail over SMTP (smtplib), configured by the `SMTP_*` settings (engine/settings.py).

`SMTP_HOST` (no host: e-mail is off), `SMTP_PORT` (25, or 587 with STARTTLS, 465 with SMTP_SSL),
`SMTP_FROM` (default `pdcaflow@localhost`), optional `SMTP_USER`/`SMTP_PASSWORD`, `SMTP_STARTTLS=1`,
`SMTP_SSL=1`, `SMTP_TIMEOUT` (seconds, default 30).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from engine.settings import Settings
from engine.settings import current as current_settings


class MailerNotConfigured(Exception):
    """SMTP_HOST is not set: e-mail delivery is switched off."""


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
        """The configured SMTP server (the process's settings)."""
        return cls.from_settings(current_settings())

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port_or_default,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            use_ssl=settings.smtp_ssl,
            timeout=settings.smtp_timeout,
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
