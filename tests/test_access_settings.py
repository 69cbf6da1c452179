"""The settings of access control read from the environment: API_KEYS, RATE_LIMIT, CORS, LOG_FORMAT,
AUTH_OPEN_PATHS; a bad value stops startup with a message that names the setting (and never echoes
a token); CORS is off unless origins are given."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from app import create_app
from auth.tokens import hash_token
from config import ConfigError, Settings, load_settings
from tests.helpers import make_settings

TOKEN = "k" * 24


def test_api_keys_and_friends_are_read_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "API_KEYS": f"dash:read:{TOKEN}, engine-7:read+write:{'e' * 30}",
            "RATE_LIMIT": "600/minute",
            "CORS_ALLOW_ORIGINS": "https://ui.example.com, https://ops.example.com",
            "LOG_FORMAT": "JSON",
            "AUTH_OPEN_PATHS": "/health,/metrics",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        },
        env_file=None,
    )
    assert [(k.name, k.scopes) for k in settings.api_keys] == [("dash", ("read",)), ("engine-7", ("read", "write"))]
    assert settings.api_keys[0].token_hash == hash_token(TOKEN, settings.api_key_pepper)
    assert TOKEN not in repr(settings)
    assert settings.rate_limit == ("minute", 600)
    assert settings.cors_allow_origins == ("https://ui.example.com", "https://ops.example.com")
    assert settings.log_format == "json"
    assert settings.auth_open_paths == ("/health", "/metrics")
    defaults = load_settings(environ={}, env_file=None)
    assert defaults.api_keys == ()
    assert defaults.cors_allow_origins == ()
    assert defaults.rate_limit == ("second", 100)
    assert load_settings(environ={"RATE_LIMIT": "off"}, env_file=None).rate_limit is None


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("API_KEYS", f"dash:root:{TOKEN}", "unknown scope 'root'"),
        ("API_KEYS", f"dash:read:{TOKEN},other:read:{TOKEN}", "share one token"),
        ("API_KEYS", "dash:read:short", "20-200 characters"),
        ("API_KEYS", f"dash read {TOKEN}", "name:scopes:token"),
        ("RATE_LIMIT", "lots", "N/unit"),
        ("LOG_FORMAT", "xml", "text or json"),
        ("REDIS_URL", "127.0.0.1:6379", "redis://"),
        ("AUTH_OPEN_PATHS", "health", "start with '/'"),
    ],
)
def test_a_bad_value_names_the_setting_and_hides_tokens(name: str, raw: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={name: raw}, env_file=None)
    assert str(refused.value).startswith(name)
    assert says in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_cors_is_off_by_default_and_follows_the_setting(settings: Settings, db: psycopg.Connection[Any]) -> None:
    preflight = {"Origin": "https://ui.example.com", "Access-Control-Request-Method": "PATCH"}
    with TestClient(app=create_app(settings)) as client:
        assert "access-control-allow-origin" not in client.get("/api/v1/migrations", headers=preflight).headers
    allowed = make_settings(
        settings.database_url or "", settings.db_schema, cors_allow_origins=("https://ui.example.com",)
    )
    with TestClient(app=create_app(allowed)) as client:
        answer = client.options("/api/v1/migrations", headers=preflight)
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == "https://ui.example.com"
        assert "PATCH" in answer.headers["access-control-allow-methods"]
        simple = client.get("/api/v1/migrations", headers={"Origin": "https://ui.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://ui.example.com"
        assert "X-Request-ID" in simple.headers["access-control-expose-headers"]
        other = client.get("/api/v1/migrations", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers
