"""Sign-in and token attempts (engine/credentials.py): reserved in the database before any password
is hashed, keyed on (client address, user name) with a per-address ceiling, the client address taken
from X-Forwarded-For only behind configured proxies, and shared by every app on the database."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

import engine.credentials
from engine import settings as engine_settings
from engine.credentials import SignInLimits
from storage.db import Database
from tests.conftest import serving
from tests.integration.conftest import PASSWORD
from web import create_app


def _post_token(base: str, username: str, password: str) -> int:
    request = urllib.request.Request(f"{base}/api/v1/auth/token", method="POST",
                                     data=json.dumps({"username": username, "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _token_status(client, username: str, password: str = "wrong-password", address: str = "10.0.0.1",
                  headers: dict[str, str] | None = None) -> int:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers or {}).status_code


def test_parallel_wrong_passwords_are_bounded_before_hashing(app, monkeypatch):
    """40 wrong passwords at once over real HTTP: exactly the allowed 5 are hashed (401), the rest
    are refused before any hashing (429)."""
    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=5, per_address=1000)
    hashed = []
    real_check = engine.credentials.check_password_hash

    def counting_check(stored: str, password: str) -> bool:
        hashed.append(password)
        return real_check(stored, password)

    monkeypatch.setattr(engine.credentials, "check_password_hash", counting_check)
    with serving(app) as base, ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(lambda i: _post_token(base, "rita.reviewer", f"guess-{i}"), range(40)))
    assert sorted(statuses) == [401] * 5 + [429] * 35
    assert len(hashed) == 5
    with serving(app) as base:  # the account stays locked for this address, even with the right password
        assert _post_token(base, "rita.reviewer", PASSWORD) == 429


def test_limits_are_per_address_and_user(client, app):
    """Ten bad tokens for one user lock that user from that address only: other users from the same
    address and the same user from another address still get tokens."""
    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=10, per_address=100)
    assert [_token_status(client, "rita.reviewer") for _ in range(10)] == [401] * 10
    assert _token_status(client, "rita.reviewer", PASSWORD) == 429
    assert _token_status(client, "rob.reviewer", PASSWORD) == 200
    assert _token_status(client, "rita.reviewer", PASSWORD, address="10.0.0.2") == 200
    # the login form shares the same budget
    response = client.post("/login", data={"username": "rita.reviewer", "password": PASSWORD},
                           environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert response.status_code in (400, 429)  # without CSRF token the form is refused before sign-in


def test_per_address_ceiling_stops_spraying(client, app):
    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=10, per_address=6)
    assert [_token_status(client, f"user{i}") for i in range(6)] == [401] * 6
    assert _token_status(client, "rob.reviewer", PASSWORD) == 429  # a new name from the same address
    assert _token_status(client, "rob.reviewer", PASSWORD, address="10.0.0.9") == 200


def test_a_success_gives_the_attempts_back(client, app):
    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=3, per_address=5)
    assert [_token_status(client, "rita.reviewer") for _ in range(2)] == [401, 401]
    assert _token_status(client, "rita.reviewer", PASSWORD) == 200  # clears rita's window, returns one address slot
    assert [_token_status(client, "rita.reviewer") for _ in range(3)] == [401, 401, 401]
    assert _token_status(client, "rita.reviewer", PASSWORD) == 429  # rita's own window is full again
    assert _token_status(client, "rob.reviewer", PASSWORD) == 429  # and so is the address's (2 + 3 of 5)


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(db, runtime, tmp_path, app):
    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=2, per_address=100)
    client = app.test_client()
    for i in range(2):  # a client cannot pick a fresh address per attempt by sending the header
        assert _token_status(client, "rita.reviewer", headers={"X-Forwarded-For": f"192.0.2.{i}"}) == 401
    assert _token_status(client, "rita.reviewer", headers={"X-Forwarded-For": "192.0.2.99"}) == 429

    engine_settings.configure(engine_settings.Settings.from_env({"PDCAFLOW_TRUSTED_PROXIES": "1"}))
    proxied = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "test-secret", "TESTING": True,
                          "INSTANCE_DIR": str(tmp_path), "SIGNIN_LIMITS": SignInLimits(per_user=2, per_address=100)})
    behind = proxied.test_client()
    # behind one trusted proxy the client address is the header's (the proxy's own address is 10.0.0.1)
    assert [_token_status(behind, "rob.reviewer", headers={"X-Forwarded-For": "198.51.100.7"})
            for _ in range(2)] == [401, 401]
    assert _token_status(behind, "rob.reviewer", PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"}) == 429
    assert _token_status(behind, "rob.reviewer", PASSWORD, headers={"X-Forwarded-For": "198.51.100.8"}) == 200


def test_limits_are_shared_by_two_apps_on_one_database(db, runtime, tmp_path, app):
    """Two app instances (two workers or machines) with their own connections to one database count together."""
    limits = SignInLimits(per_user=4, per_address=100)
    other_db = Database(db.url)
    try:
        other = create_app({"DATABASE": other_db, "SECRET_KEY": "test-secret", "TESTING": True,
                            "INSTANCE_DIR": str(tmp_path / "other"), "SIGNIN_LIMITS": limits})
        app.extensions["pdcaflow.signin_limits"] = limits
        first, second = app.test_client(), other.test_client()
        statuses = [_token_status(first if i % 2 else second, "rita.reviewer") for i in range(6)]
        assert statuses == [401] * 4 + [429] * 2
        assert _token_status(first, "rita.reviewer", PASSWORD) == 429
        assert _token_status(second, "rita.reviewer", PASSWORD) == 429
    finally:
        other_db.dispose()


def test_engine_rest_basic_auth_uses_the_same_limits(client, app):
    import base64

    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=2, per_address=100)

    def basic(password: str) -> int:
        value = base64.b64encode(f"rita.reviewer:{password}".encode()).decode()
        return client.get("/engine-rest/engine", headers={"Authorization": f"Basic {value}"}).status_code

    assert [basic("nope-nope"), basic("nope-nope"), basic(PASSWORD)] == [401, 401, 429]


@pytest.mark.parametrize("raw,expected", [("", 0), ("0", 0), ("2", 2)])
def test_trusted_proxies_setting(raw, expected):
    from engine.settings import Settings

    assert Settings.from_env({"PDCAFLOW_TRUSTED_PROXIES": raw}).trusted_proxies == expected


@pytest.mark.parametrize("raw", ["-1", "many", "11"])
def test_trusted_proxies_setting_refuses_nonsense(raw):
    from engine.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="PDCAFLOW_TRUSTED_PROXIES"):
        Settings.from_env({"PDCAFLOW_TRUSTED_PROXIES": raw})

