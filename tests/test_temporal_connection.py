"""How the client connects to Temporal: plain on loopback, TLS with a client
certificate or an API key for Temporal Cloud, and clear errors for bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.service import TLSConfig

from guest_journey.settings import Settings
from guest_journey.temporal import TemporalSettingsError, temporal_connection

CLOUD = {"temporal_address": "journeys.a1b2c.tmprl.cloud:7233", "temporal_namespace": "journeys.a1b2c"}


@pytest.fixture
def pem(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def test_the_default_connects_without_tls_or_key(tmp_path):
    connection = temporal_connection(Settings(data_dir=tmp_path))
    assert connection.target_host == "127.0.0.1:7233" and connection.namespace == "default"
    assert connection.tls is False and connection.api_key is None


def test_tls_alone_uses_the_systems_certificate_authorities(tmp_path):
    connection = temporal_connection(Settings(data_dir=tmp_path, temporal_tls=True))
    assert connection.tls is True


def test_an_api_key_turns_tls_on(tmp_path):
    connection = temporal_connection(Settings(data_dir=tmp_path, temporal_api_key=SecretStr("cloud-key"), **CLOUD))
    assert connection.api_key == "cloud-key"
    assert connection.tls is True
    assert connection.target_host == CLOUD["temporal_address"] and connection.namespace == CLOUD["temporal_namespace"]


def test_a_blank_api_key_is_no_key(tmp_path):
    connection = temporal_connection(Settings(data_dir=tmp_path, temporal_api_key=SecretStr("  ")))
    assert connection.api_key is None and connection.tls is False


def test_mtls_reads_the_certificate_key_and_ca(tmp_path, pem):
    settings = Settings(
        data_dir=tmp_path, **CLOUD,
        temporal_tls_cert=pem("client.pem", "CERT"), temporal_tls_key=pem("client.key", "KEY"),
        temporal_tls_ca=pem("ca.pem", "CA"), temporal_tls_server_name="temporal.internal",
    )
    connection = temporal_connection(settings)
    assert connection.tls == TLSConfig(
        server_root_ca_cert=b"CA", client_cert=b"CERT", client_private_key=b"KEY", domain="temporal.internal"
    )
    assert connection.api_key is None


def test_a_private_ca_alone_turns_tls_on(tmp_path, pem):
    connection = temporal_connection(Settings(data_dir=tmp_path, temporal_tls_ca=pem("ca.pem", "CA")))
    assert connection.tls == TLSConfig(server_root_ca_cert=b"CA")


@pytest.mark.parametrize(("given", "missing"), [("cert", "KEY"), ("key", "CERT")])
def test_a_certificate_needs_its_key_and_the_error_names_both(tmp_path, pem, given, missing):
    with pytest.raises(ValidationError) as raised:
        Settings(data_dir=tmp_path, **{f"temporal_tls_{given}": pem("half.pem", "X")})
    message = str(raised.value)
    assert f"GUEST_JOURNEY_TEMPORAL_TLS_{given.upper()} is set without GUEST_JOURNEY_TEMPORAL_TLS_{missing}" in message


@pytest.mark.parametrize("field", ["temporal_tls_cert", "temporal_tls_key", "temporal_tls_ca"])
def test_a_missing_file_is_named_with_its_setting(tmp_path, field):
    with pytest.raises(ValidationError) as raised:
        Settings(data_dir=tmp_path, **{field: tmp_path / "nowhere.pem"})
    [error] = raised.value.errors()
    assert error["loc"] == (field,)
    assert f"no file at {tmp_path / 'nowhere.pem'}" in error["msg"]


def test_a_file_that_disappears_after_start_is_named_when_connecting(tmp_path, pem):
    settings = Settings(data_dir=tmp_path, temporal_tls_ca=pem("ca.pem", "CA"))
    (tmp_path / "ca.pem").unlink()
    with pytest.raises(TemporalSettingsError, match="GUEST_JOURNEY_TEMPORAL_TLS_CA: cannot read"):
        temporal_connection(settings)


def test_the_settings_come_from_the_environment(tmp_path, pem, monkeypatch):
    monkeypatch.setenv("GUEST_JOURNEY_TEMPORAL_API_KEY", "cloud-key")
    monkeypatch.setenv("GUEST_JOURNEY_TEMPORAL_TLS_CA", str(pem("ca.pem", "CA")))
    settings = Settings(data_dir=tmp_path)
    connection = temporal_connection(settings)
    assert connection.api_key == "cloud-key" and connection.tls == TLSConfig(server_root_ca_cert=b"CA")
    assert "cloud-key" not in repr(settings)
