"""The billing worker's settings, read once from ``TOLLGATE_*`` variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.settings import DEFAULT_DATABASE_URL, Env, Network, Secret


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSettings:
    database_url: str
    redis_url: str
    api_host: str
    api_port: int
    operator_key: Secret
    #: Fernet keys sealing webhook secrets at rest (the first seals; see ``db.sealed``).
    secrets_key: Secret | None
    test_mode: bool
    scheduler_interval: float
    usage_fold_interval: float
    #: Ask the provider about a charge left pending or unknown this long (seconds).
    reconcile_after: float
    provider_timeout: float
    #: Where advisory email goes out: "smtp://host:port" (None: email is not sent).
    smtp_url: str | None
    mail_from: str
    #: How far back and ahead a request's dates may lie, in days (see ``api.dates``).
    max_backdate_days: int
    max_ahead_days: int
    #: How far ahead a billing target (an invoice run's, an account's invoice) may lie.
    max_target_days: int
    #: Private networks tenants' webhooks may be sent to (default: public addresses only).
    webhook_allowed_networks: tuple[Network, ...]
    #: Where tenants' Stripe calls go (None: Stripe itself; a localstripe in tests).
    stripe_api_base: str | None
    #: Proxies whose X-Forwarded-Proto the API believes (console cookies get Secure).
    api_trusted_proxies: tuple[Network, ...] = ()
    #: What one API request may bill while its caller waits (``invoicing.budget``).
    max_invoices_per_request: int = 200
    max_items_per_request: int = 2000
    #: How long one API request may wait for the database (``db.deadline``).
    request_seconds: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        env = Env(environ)
        return cls(
            database_url=env.text("DATABASE_URL", DEFAULT_DATABASE_URL),
            redis_url=env.text("REDIS_URL", "redis://127.0.0.1:6379/0"),
            api_host=env.text("API_HOST", "127.0.0.1"),
            api_port=env.integer("API_PORT", 8081, maximum=65535),
            operator_key=env.secret("OPERATOR_KEY"),
            secrets_key=Secret(raw) if (raw := env.optional("SECRETS_KEY")) else None,
            test_mode=env.flag("TEST_MODE", False),
            scheduler_interval=env.number("SCHEDULER_INTERVAL", 1.0, minimum=0.05),
            usage_fold_interval=env.number("USAGE_FOLD_INTERVAL", 60.0, minimum=0.1),
            reconcile_after=env.number("RECONCILE_AFTER", 60.0, minimum=0.0),
            provider_timeout=env.number("PROVIDER_TIMEOUT", 10.0, minimum=0.1),
            smtp_url=env.optional("SMTP_URL"),
            mail_from=env.text("MAIL_FROM", "tollgate@localhost"),
            max_backdate_days=env.integer("MAX_BACKDATE_DAYS", 3650, maximum=36500),
            max_ahead_days=env.integer("MAX_AHEAD_DAYS", 3650, maximum=36500),
            max_target_days=env.integer("MAX_TARGET_DAYS", 730, maximum=36500),
            webhook_allowed_networks=env.networks("WEBHOOK_ALLOWED_NETWORKS"),
            stripe_api_base=env.optional("STRIPE_API_BASE"),
            api_trusted_proxies=env.networks("API_TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
            max_invoices_per_request=env.integer("MAX_INVOICES_PER_REQUEST", 200, minimum=1),
            max_items_per_request=env.integer("MAX_ITEMS_PER_REQUEST", 2000, minimum=1),
            request_seconds=env.number("REQUEST_SECONDS", 30.0, minimum=0.1),
        )
