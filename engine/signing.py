"""The installation's secret key, shared by the web app (sessions) and the scheduler (signed links
in customer e-mails): `PDCAFLOW_SECRET_KEY`, else a random key generated once into the instance
folder (`PDCAFLOW_INSTANCE_DIR`, default `instance/`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from engine.settings import current as current_settings


def secret_key(instance_dir: Path | str | None = None) -> str:
    """The configured key, else the one generated into `instance_dir` (default: the settings')."""
    settings = current_settings()
    if settings.secret_key:
        return settings.secret_key
    folder = Path(instance_dir) if instance_dir is not None else settings.instance_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def sign(purpose: str, value: str, key: str) -> str:
    """A URL-safe signature binding `value` to `purpose` (e.g. a survey link for one instance)."""
    return hmac.new(key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def verify(purpose: str, value: str, signature: str, key: str) -> bool:
    return hmac.compare_digest(sign(purpose, value, key), signature or "")
