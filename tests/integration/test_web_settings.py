"""The app factory takes its configuration from engine.settings, not from the environment directly."""

from __future__ import annotations

from engine.settings import Settings, configure
from web import create_app


def test_create_app_uses_the_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    configure(Settings(instance_dir=tmp_path / "inst", secure_cookies=True, timezone="Europe/Berlin",
                       complaint_process="my_complaints"))
    app = create_app({"TESTING": True})
    db = app.extensions["pdcaflow.db"]
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert (app.config["TIMEZONE"], app.config["COMPLAINT_PROCESS"]) == ("Europe/Berlin", "my_complaints")
        # no DATABASE_URL: the SQLite file and the generated key live in the configured instance folder
        assert db.url == f"sqlite:///{(tmp_path / 'inst' / 'pdcaflow.sqlite3').resolve()}"
        assert app.config["SECRET_KEY"] == (tmp_path / "inst" / "secret_key").read_text().strip()
    finally:
        db.dispose()


def test_configured_secret_key_and_database_url_win(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    configure(Settings(instance_dir=tmp_path / "inst", secret_key="s" * 32, database_url=url))
    app = create_app({"TESTING": True})
    try:
        assert app.config["SECRET_KEY"] == "s" * 32 and app.extensions["pdcaflow.db"].url == url
        assert not (tmp_path / "inst" / "secret_key").exists()
    finally:
        app.extensions["pdcaflow.db"].dispose()
