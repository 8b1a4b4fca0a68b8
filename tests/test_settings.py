"""Settings (CONTRACT §1): production refuses to start without its real parts,
bad API keys are named, and the development secret key is generated once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from guest_journey.api_keys import KeyAccess
from guest_journey.secret_keys import secret_bits
from guest_journey.settings import Settings

POSTGRES = "postgresql+psycopg://guest_journey:pw@db:5432/guest_journey"
RES_KEY, OPS_KEY = "k-res-" + "r" * 24, "k-ops-" + "o" * 24  # 30 characters: 180 bits as counted
COMPLETE = {
    "api_keys": f"{RES_KEY}:reservations,{OPS_KEY}:ops",
    "secret_key": "a-long-random-secret-of-32-chars",
    "database_url": POSTGRES,
}
API_KEYS, SECRET_KEY, DATABASE_URL = "GUEST_JOURNEY_API_KEYS", "GUEST_JOURNEY_SECRET_KEY", "GUEST_JOURNEY_DATABASE_URL"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes counts, whatever the shell running the suite has set."""
    for name in list(os.environ):
        if name.upper().startswith("GUEST_JOURNEY_"):
            monkeypatch.delenv(name)


def production_error(**values: object) -> str:
    with pytest.raises(ValidationError) as error:
        Settings(env="production", **values)  # type: ignore[arg-type]
    return str(error.value)


# -- production needs its real parts -----------------------------------------------


def test_production_without_anything_names_every_missing_setting() -> None:
    message = production_error()
    assert API_KEYS in message
    assert SECRET_KEY in message
    assert DATABASE_URL in message


@pytest.mark.parametrize(
    ("missing", "named"),
    [("api_keys", API_KEYS), ("secret_key", SECRET_KEY), ("database_url", DATABASE_URL)],
)
def test_production_names_exactly_the_missing_setting(missing: str, named: str) -> None:
    values = {name: value for name, value in COMPLETE.items() if name != missing}
    message = production_error(**values)
    assert named in message
    for other in {API_KEYS, SECRET_KEY, DATABASE_URL} - {named}:
        assert other not in message


@pytest.mark.parametrize(
    "url", ["sqlite:///./guest-journey.sqlite", "sqlite+aiosqlite:////var/lib/gj/app.sqlite"]
)
def test_production_refuses_sqlite(url: str) -> None:
    message = production_error(**{**COMPLETE, "database_url": url})
    assert DATABASE_URL in message
    assert "non-SQLite" in message


def test_production_counts_blank_api_keys_as_missing() -> None:
    assert API_KEYS in production_error(**{**COMPLETE, "api_keys": "  "})


def test_production_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUEST_JOURNEY_ENV", "production")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert API_KEYS in str(error.value)

    monkeypatch.setenv(API_KEYS, COMPLETE["api_keys"])
    monkeypatch.setenv(SECRET_KEY, COMPLETE["secret_key"])
    monkeypatch.setenv(DATABASE_URL, POSTGRES)
    settings = Settings()
    assert settings.env == "production"
    assert settings.api_key_roles == {RES_KEY: "reservations", OPS_KEY: "ops"}


def test_production_with_everything_starts() -> None:
    settings = Settings(env="production", **COMPLETE)  # type: ignore[arg-type]
    assert settings.resolved_database_url == POSTGRES
    assert settings.resolved_secret_key() == "a-long-random-secret-of-32-chars"


def test_production_refuses_an_empty_secret_key() -> None:
    assert SECRET_KEY in production_error(**{**COMPLETE, "secret_key": ""})


def test_development_needs_none_of_them(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.env == "development"
    assert settings.api_key_roles == {}
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:")


# -- API keys ----------------------------------------------------------------------


def test_api_keys_map_each_key_to_its_role() -> None:
    settings = Settings(api_keys="k1:reservations, k2:ops ,k3:admin")
    assert settings.api_key_roles == {"k1": "reservations", "k2": "ops", "k3": "admin"}


@pytest.mark.parametrize(
    ("api_keys", "named"),
    [
        ("k1:ops,no-role-here", "entry 2 is not 'key:role'"),
        ("k1:ops,:admin", "entry 2 is not 'key:role'"),
        ("k1:superuser", "role 'superuser'"),
        ("k1:ops,k2:", "role ''"),
        ("k1:Ops", "role 'Ops'"),
        ("k1:ops,k1:admin", "entry 2 repeats a key"),
        ("k1:ops:", "hotel '' is not a hotel id"),
        ("k1:ops:hotel-a||hotel-b", "hotel '' is not a hotel id"),
        ("k1:ops:hotel a", "hotel 'hotel a' is not a hotel id"),
        ("k1:ops:hotel-a,hotel-b", "entry 2 is not 'key:role'"),
    ],
)
def test_a_bad_api_key_entry_is_named_without_showing_the_key(api_keys: str, named: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(api_keys=api_keys)
    problem = error.value.errors()[0]
    assert problem["loc"] == ("api_keys",)
    assert named in problem["msg"]
    assert "no-role-here" not in problem["msg"]


def test_an_api_key_may_name_the_hotels_it_is_limited_to() -> None:
    settings = Settings(api_keys="k1:ops, k2:reservations:hotel-a , k3:admin:hotel-a|hotel.b|h_c")
    assert settings.api_key_roles == {"k1": "ops", "k2": "reservations", "k3": "admin"}
    access = settings.api_key_access
    assert access["k1"] == KeyAccess(role="ops", hotels=None)  # every hotel
    assert access["k2"] == KeyAccess(role="reservations", hotels=frozenset({"hotel-a"}))
    assert access["k3"] == KeyAccess(role="admin", hotels=frozenset({"hotel-a", "hotel.b", "h_c"}))


def test_an_unknown_role_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(api_keys="k1:superuser")
    message = error.value.errors()[0]["msg"]
    for role in ("reservations", "ops", "admin"):
        assert role in message


# -- the Temporal Web UI -----------------------------------------------------------


def test_the_temporal_ui_is_the_dev_servers_unless_configured() -> None:
    assert Settings(api_host="10.0.0.5", temporal_ui_port=9233).resolved_temporal_ui_url == "http://10.0.0.5:9233"
    configured = Settings(api_host="10.0.0.5", temporal_ui_url=" https://temporal.example.com/ ")
    assert configured.resolved_temporal_ui_url == "https://temporal.example.com"


def test_the_temporal_ui_url_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUEST_JOURNEY_TEMPORAL_UI_URL", "http://localhost:8080")
    assert Settings().resolved_temporal_ui_url == "http://localhost:8080"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("temporal.example.com", "is not an http:// or https:// address"),
        ("ftp://temporal.example.com", "is not an http:// or https:// address"),
        ("https://", "is not an http:// or https:// address"),
        ("https://temporal.example.com:ui", "is not an http:// or https:// address"),
        ("https://temporal example.com", "is not an http:// or https:// address"),
        ("https://temporal.example.com/?tab=1", "has a query or fragment"),
    ],
)
def test_a_bad_temporal_ui_url_is_refused_with_the_setting_named(url: str, problem: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(temporal_ui_url=url)
    [found] = error.value.errors()
    assert found["loc"] == ("temporal_ui_url",)
    assert problem in found["msg"] and repr(url) in found["msg"]


# -- the generated secret key -------------------------------------------------------


def test_the_secret_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = Settings(data_dir=data_dir).resolved_secret_key()

    path = data_dir / "secret_key"
    assert path.read_text().strip() == key
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert Settings(data_dir=data_dir).resolved_secret_key() == key  # another process, same key
    assert Settings(data_dir=tmp_path / "other").resolved_secret_key() != key


def test_a_configured_secret_key_wins_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr("from-the-environment"))
    assert settings.resolved_secret_key() == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def test_the_secret_key_is_not_shown(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, secret_key=SecretStr("do-not-print-me"), smtp_password=SecretStr("nor-me")
    )
    shown = repr(settings) + str(settings.model_dump())
    assert "do-not-print-me" not in shown
    assert "nor-me" not in shown


# -- key strength (issue 13, item 6) -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "bits"),
    [("0123456789abcdef0123456789abcdef", 128), ("0123456789abcdef0123456789abcde", 124),
     ("x" * 22, 132), ("x" * 21, 126), ("", 0)],
)
def test_a_key_counts_four_bits_a_hex_digit_and_six_for_any_other_character(key: str, bits: int) -> None:
    assert secret_bits(key) == bits


def test_production_refuses_a_weak_api_key_and_names_the_setting_not_the_key() -> None:
    message = production_error(**{**COMPLETE, "api_keys": f"{RES_KEY}:reservations,short-key:ops"})
    assert f"{API_KEYS} (entry 2)" in message
    assert "short-key" not in message
    assert SECRET_KEY not in message


def test_production_refuses_a_weak_secret_key() -> None:
    message = production_error(**{**COMPLETE, "secret_key": "production-secret"})
    assert SECRET_KEY in message
    assert API_KEYS not in message


def test_development_accepts_weak_keys_and_names_them_for_the_warning() -> None:
    settings = Settings(api_keys="k1:admin", secret_key="test-secret")
    assert settings.weak_secrets() == [f"{API_KEYS} (entry 1)", SECRET_KEY]


def test_fallback_keys_verify_after_the_current_one() -> None:
    settings = Settings(secret_key="new-key", secret_key_fallbacks=" old-key , older-key,,new-key ")
    assert settings.verification_secret_keys() == ("new-key", "old-key", "older-key")
