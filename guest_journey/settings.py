"""Every setting of the service, read once from `GUEST_JOURNEY_*` variables.

This is the only module that reads the environment (CONTRACT §1).
"""

from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from guest_journey.addresses import IPNetwork, http_base_url, ip_networks, split_host_port
from guest_journey.api_keys import KeyAccess, Role, check_api_keys, key_access
from guest_journey.mail_tls import ImapTls, SmtpTls, imap_port, smtp_tls, smtp_tls_of_starttls
from guest_journey.secret_keys import (
    MIN_SECRET_BITS,
    development_secret_key,
    fallback_keys,
    weak_secrets,
)

WorkflowIdScope = Literal["reservation", "hotel"]
LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUEST_JOURNEY_", extra="ignore")

    env: Literal["development", "production"] = "development"
    log_level: LogLevel = Field(default="info", description="the lowest level logged: debug, info, warning, error")
    data_dir: Path = Path("./.guest-journey")
    database_url: str | None = None

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "guest-journey"
    workflow_id_scope: WorkflowIdScope = Field(
        default="reservation",
        description="reservation: journey-{reservation_id}; hotel: journey-{hotel_id}-{reservation_id}, for hotels "
        "whose reservation ids collide (guest_journey.journey_ids)",
    )
    temporal_ui_port: int = 8233
    temporal_ui_url: str | None = Field(
        default=None,
        description="the Temporal Web UI as staff's browsers reach it; unset: the dev server's, on the API host",
    )
    payload_encryption: bool = Field(
        default=True,
        description="encrypt journeys' Temporal payloads with their data keys (guest_journey.payload_codec); "
        "off, encrypted payloads still decode; production refuses off",
    )
    data_key_cache_seconds: float = Field(
        default=30.0, ge=0, le=300,
        description="how long a process keeps a journey's data key in memory; an erase reaches every "
        "process's codec within this time (guest_journey.journey_keys)",
    )
    temporal_metrics_address: str | None = Field(
        default=None,
        description="host:port where the Temporal SDK's own metrics are served for Prometheus; unset: off",
    )
    metrics_address: str | None = Field(
        default=None,
        description="internal host:port where this process serves its Prometheus metrics (GET /metrics) and "
        "GET /health/live: a worker whenever it is set, the API in production (its public /metrics is then 404); "
        "unset: the worker serves none, the API in development keeps /metrics on its own listener",
    )
    # Temporal Cloud, or any cluster behind TLS (see `guest_journey.temporal.temporal_connection`).
    temporal_tls: bool = Field(
        default=False, description="TLS to Temporal; implied by a client certificate, a CA or an API key"
    )
    temporal_tls_cert: Path | None = Field(default=None, description="client certificate (PEM) for mTLS")
    temporal_tls_key: Path | None = Field(default=None, description="the client certificate's private key (PEM)")
    temporal_tls_ca: Path | None = Field(
        default=None, description="CA (PEM) that signed the server's certificate; unset: the system's CAs"
    )
    temporal_tls_server_name: str | None = Field(
        default=None, description="the name on the server's certificate, when the address's host differs"
    )
    temporal_api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key; implies TLS")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"

    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: SmtpTls | None = Field(
        default=None,
        description="starttls (default: upgrade when offered, required with AUTH), tls (implicit, SMTPS) or none",
    )
    smtp_starttls: bool | None = Field(
        default=None, description="deprecated: true is smtp_tls=starttls, false is none (tls on port 465)"
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="the whole SMTP conversation of one message"
    )
    email_from: str | None = None

    # Guests' e-mail replies without a relay: `guest-journey mail-in` (SMTP) and `mail-in --imap`.
    mail_in_port: int | None = Field(
        default=None, ge=1, le=65535, description="the SMTP receiver's port; set, `guest-journey dev` starts it too"
    )
    mail_in_host: str = Field(default="127.0.0.1", description="the address the SMTP receiver listens on")
    mail_in_domain: str | None = Field(
        default=None, description="the domain of the reply+<token>@ addresses accepted; unset: GUEST_JOURNEY_EMAIL_FROM's"
    )
    mail_in_max_bytes: int = Field(
        default=25_000_000, ge=10_000, description="the largest e-mail taken (SMTP SIZE; larger: 552, or skipped by IMAP)"
    )
    mail_in_tls_cert: Path | None = Field(default=None, description="certificate (PEM) offered by STARTTLS")
    mail_in_tls_key: Path | None = Field(default=None, description="the STARTTLS certificate's private key (PEM)")
    imap_host: str | None = Field(default=None, description="a mailbox guests' replies land in; set: `mail-in --imap`")
    imap_port: int | None = Field(default=None, ge=1, le=65535, description="unset: 993 with tls, else 143")
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    imap_mailbox: str = "INBOX"
    imap_tls: ImapTls = Field(default="tls", description="tls (implicit, IMAPS) or none (a mailbox on loopback only)")
    imap_poll_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="between polls, and the longest IDLE before it is renewed"
    )

    whatsapp_phone_number_id: str | None = None
    whatsapp_access_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com/v21.0"
    whatsapp_timeout_seconds: float = Field(
        default=15.0, gt=0, le=300, description="one request to the WhatsApp Cloud API"
    )

    policy_file: Path | None = None
    api_keys: str | None = Field(
        default=None, description="key:role,key:role; key:role:hotel-a|hotel-b limits a key to those hotels"
    )
    kpi_webhook_url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="where KPI alerts are POSTed as JSON"
    )
    secret_key: SecretStr | None = None
    secret_key_fallbacks: SecretStr | None = Field(
        default=None, description="earlier secret keys, comma-separated: still accepted when verifying links and cookies"
    )

    # Requests per minute and per caller, per API replica (see `api.rate_limits`); 0: no limit.
    rate_limit_guest_per_minute: int = Field(
        default=300, ge=0, description="guest pages, unsubscribe, web chat polling: per client address"
    )
    rate_limit_whatsapp_webhook_per_minute: int = Field(
        default=15_000, ge=0, description="/webhooks/whatsapp (Meta's deliveries): per client address"
    )
    rate_limit_webhook_per_minute: int = Field(
        default=600, ge=0, description="other /webhooks/… routes: per client address"
    )
    rate_limit_login_per_minute: int = Field(default=10, ge=0, description="staff sign-in attempts: per client address")
    rate_limit_api_key_per_minute: int = Field(
        default=1200, ge=0, description="every other route: per API key, per client address without a known key"
    )
    rate_limit_failed_key_per_minute: int = Field(
        default=10, ge=0, description="requests with a wrong or unknown Bearer key, on any route: per client address"
    )
    trusted_proxies: str | None = Field(
        default=None, description="IPs/CIDRs of reverse proxies whose X-Forwarded-For names the client"
    )

    # The OpenTelemetry SDK reads every OTEL_* variable itself; these only say
    # whether spans are exported over OTLP at all.
    otel_exporter_otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("temporal_ui_url")
    @classmethod
    def _check_temporal_ui_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return http_base_url(value.strip())

    @field_validator("metrics_address")
    @classmethod
    def _check_metrics_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        address = value.strip()
        split_host_port(address)  # raises with what is wrong
        return address

    @model_validator(mode="after")
    def _metrics_addresses_differ(self) -> Settings:
        if self.metrics_address and self.metrics_address == self.temporal_metrics_address:
            raise ValueError(
                "GUEST_JOURNEY_METRICS_ADDRESS and GUEST_JOURNEY_TEMPORAL_METRICS_ADDRESS are both "
                f"{self.metrics_address}: the process's metrics and the Temporal SDK's need a port each"
            )
        return self

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        check_api_keys(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        ip_networks(value)
        return value

    @field_validator("temporal_tls_cert", "temporal_tls_key", "temporal_tls_ca", "mail_in_tls_cert", "mail_in_tls_key")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file at {value}")
        return value

    @model_validator(mode="after")
    def _mtls_needs_cert_and_key(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            given, missing = ("CERT", "KEY") if self.temporal_tls_key is None else ("KEY", "CERT")
            raise ValueError(
                f"GUEST_JOURNEY_TEMPORAL_TLS_{given} is set without GUEST_JOURNEY_TEMPORAL_TLS_{missing}: "
                "mTLS needs both the client certificate and its key"
            )
        return self

    @model_validator(mode="after")
    def _mail_in_tls_needs_cert_and_key(self) -> Settings:
        if (self.mail_in_tls_cert is None) != (self.mail_in_tls_key is None):
            raise ValueError(
                "GUEST_JOURNEY_MAIL_IN_TLS_CERT and GUEST_JOURNEY_MAIL_IN_TLS_KEY go together: STARTTLS needs both"
            )
        return self

    @field_validator("smtp_tls", "smtp_starttls", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return value or None
        return value

    @model_validator(mode="after")
    def _smtp_tls_set_once(self) -> Settings:
        if self.smtp_tls is None or self.smtp_starttls is None:
            return self
        if self.smtp_tls != smtp_tls_of_starttls(self.smtp_starttls, self.smtp_port):
            raise ValueError(
                f"GUEST_JOURNEY_SMTP_TLS={self.smtp_tls} contradicts the deprecated "
                f"GUEST_JOURNEY_SMTP_STARTTLS={str(self.smtp_starttls).lower()}: set GUEST_JOURNEY_SMTP_TLS only"
            )
        return self

    @model_validator(mode="after")
    def _production_refuses(self) -> Settings:
        """What production mode refuses, in this order: SMTP AUTH in clear, a missing part, a weak secret."""
        if self.env != "production":
            return self
        logs_in = bool(self.smtp_username) or bool(self.smtp_password and self.smtp_password.get_secret_value())
        if self.smtp_configured and logs_in and self.resolved_smtp_tls == "none":
            raise ValueError(
                "production mode refuses SMTP AUTH without TLS: GUEST_JOURNEY_SMTP_USERNAME/_PASSWORD are set "
                "and GUEST_JOURNEY_SMTP_TLS is none (or the deprecated GUEST_JOURNEY_SMTP_STARTTLS=false); "
                "set GUEST_JOURNEY_SMTP_TLS=starttls or tls"
            )
        missing = []
        if not self.api_keys:
            missing.append("GUEST_JOURNEY_API_KEYS")
        if self.secret_key is None or not self.secret_key.get_secret_value().strip():
            missing.append("GUEST_JOURNEY_SECRET_KEY")
        if self.database_url is None or self.database_url.startswith("sqlite"):
            missing.append("GUEST_JOURNEY_DATABASE_URL (a non-SQLite database)")
        if not self.payload_encryption:
            missing.append("GUEST_JOURNEY_PAYLOAD_ENCRYPTION=true (or guest data stays in Temporal's history)")
        if missing:
            raise ValueError("production mode needs " + ", ".join(missing))
        weak = self.weak_secrets()
        if weak:
            raise ValueError(
                f"production mode needs secrets of at least {MIN_SECRET_BITS} bits: {', '.join(weak)} "
                "(generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return self

    def weak_secrets(self) -> list[str]:
        """The settings whose keys are shorter than `MIN_SECRET_BITS` (see `secret_bits`); no key is shown."""
        secret_key = None if self.secret_key is None else self.secret_key.get_secret_value().strip()
        return weak_secrets(api_keys=self.api_key_roles, secret_key=secret_key)

    @property
    def api_key_roles(self) -> dict[str, Role]:
        return {key: access.role for key, access in self.api_key_access.items()}

    @property
    def api_key_access(self) -> dict[str, KeyAccess]:
        """Each key's role and hotels (`KeyAccess`); the one parse of `api_keys` callers use."""
        return key_access(self.api_keys) if self.api_keys else {}

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return ip_networks(self.trusted_proxies) if self.trusted_proxies else ()

    @property
    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL: SQLite in the data dir unless told otherwise."""
        url = self.database_url or f"sqlite:///{self.data_dir.resolve() / 'guest-journey.sqlite'}"
        if url.startswith("sqlite:"):
            return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
        if url.startswith("postgresql://"):
            return "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @property
    def resolved_temporal_ui_url(self) -> str:
        """Where the Temporal Web UI is: the configured address, else the dev server's UI."""
        return self.temporal_ui_url or f"http://{self.api_host}:{self.temporal_ui_port}"

    @property
    def otlp_traces_configured(self) -> bool:
        return bool(self.otel_exporter_otlp_endpoint or self.otel_exporter_otlp_traces_endpoint)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def resolved_smtp_tls(self) -> SmtpTls:
        """How SMTP is secured (`mail_tls.smtp_tls`): GUEST_JOURNEY_SMTP_TLS; unset, the deprecated
        SMTP_STARTTLS; neither, implicit TLS on port 465 and STARTTLS whenever offered elsewhere."""
        return smtp_tls(tls=self.smtp_tls, starttls=self.smtp_starttls, port=self.smtp_port)

    @property
    def resolved_mail_in_domain(self) -> str:
        """The domain of the reply addresses accepted: GUEST_JOURNEY_MAIL_IN_DOMAIN, else the
        domain our e-mails' Reply-To carries (GUEST_JOURNEY_EMAIL_FROM's, or the worker's default sender's)."""
        if self.mail_in_domain and self.mail_in_domain.strip():
            return self.mail_in_domain.strip().lower()
        domain = parseaddr(self.email_from or "")[1].rpartition("@")[2]
        return (domain or "guest-journey.localhost").lower()

    @property
    def resolved_imap_port(self) -> int:
        return imap_port(self.imap_port, self.imap_tls)

    @property
    def whatsapp_configured(self) -> bool:
        return bool(self.whatsapp_phone_number_id and self.whatsapp_access_token)

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def secret_key_fallback_list(self) -> tuple[str, ...]:
        """Earlier secret keys (`GUEST_JOURNEY_SECRET_KEY_FALLBACKS`), newest first as given."""
        if self.secret_key_fallbacks is None:
            return ()
        return fallback_keys(self.secret_key_fallbacks.get_secret_value())

    def verification_secret_keys(self) -> tuple[str, ...]:
        """The keys a signature may be made with: the current one first, then the fallbacks.
        Everything is signed with the current key only."""
        current = self.resolved_secret_key()
        return (current, *(key for key in self.secret_key_fallback_list if key != current))

    def resolved_secret_key(self) -> str:
        """The key that signs guest links; generated once into the data dir in development."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return development_secret_key(self.data_dir)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_problems(error: ValidationError) -> str:
    """Invalid settings in one line, each named by its environment variable."""
    return "; ".join(
        f"GUEST_JOURNEY_{'_'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}"
        if problem["loc"] else problem["msg"]
        for problem in error.errors()
    )
