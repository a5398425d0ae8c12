"""Settings, read once from the environment (`CRIER_*` and `DATABASE_URL`)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crier.analytics import schedule as metric_schedule


class Settings(BaseSettings):
    """Everything Crier reads from its environment, with the defaults of a local install."""

    model_config = SettingsConfigDict(env_prefix="CRIER_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        default=Path(".crier"),
        description="Where the embedded database, uploaded media and local secrets live.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CRIER_DATABASE_URL"),
        description=(
            "An external PostgreSQL 15+ to use instead of the embedded one. Its user owns the "
            "schema and runs migrations."
        ),
    )
    app_database_url: str | None = Field(
        default=None,
        description=(
            "How the application itself connects. Defaults to DATABASE_URL; either way every "
            "application connection takes the role `crier_app`, which owns nothing and is "
            "subject to Row Level Security."
        ),
    )
    scheduler_database_url: str | None = Field(
        default=None,
        description="How workers claim due posts; defaults to DATABASE_URL. Either way the "
        "connection takes the role `crier_scheduler`.",
    )
    transaction_pooler: bool = Field(
        default=False,
        description="The application's and the scheduler's URLs pass through a transaction "
        "pooler (PgBouncer with pool_mode = transaction). Crier then keeps no session state "
        "on them: their logins must be the roles themselves (`crier_app`, `crier_scheduler`), "
        "no statement is prepared by name, and LISTEN goes to `direct_database_url`, which "
        "must be given. See docs/scaling.md.",
    )
    direct_database_url: str | None = Field(
        default=None,
        description="A connection straight to PostgreSQL, not through a pooler, for LISTEN "
        "(the only thing Crier does that needs a session); nothing else is run on it, so any "
        "login may be used. Defaults to each role's own URL.",
    )
    shutdown_grace_seconds: int = Field(
        default=10,
        gt=0,
        description="On Ctrl-C or TERM, how long requests in flight may take to finish before "
        "their connections are closed.",
    )
    worker_lease_seconds: float = Field(
        default=60, gt=0, description="How long a worker's claim on a post lasts unrenewed."
    )
    worker_heartbeat_seconds: float = Field(
        default=1,
        gt=0,
        description="How often a worker says it is alive. One not heard from for "
        "`worker_silence_seconds` is taken for dead: the posts it held that are not being "
        "sent pass to other workers at once, before their leases run out.",
    )
    worker_silence_seconds: float = Field(
        default=3,
        gt=0,
        description="How long a worker may go unheard before it is taken for dead; more than "
        "`worker_heartbeat_seconds` (at least twice is sensible).",
    )

    @field_validator("worker_silence_seconds")
    @classmethod
    def _longer_than_a_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        heartbeat = info.data.get("worker_heartbeat_seconds")
        if heartbeat is not None and value <= heartbeat:
            raise ValueError(
                f"must be more than worker_heartbeat_seconds ({heartbeat}), or live workers "
                "would be taken for dead"
            )
        return value

    worker_poll_seconds: float = Field(
        default=1, gt=0, description="The scheduler's safety-net poll, between wake-ups."
    )
    worker_refresh_seconds: float = Field(
        default=60,
        ge=0,
        description="How often workers refresh the tokens about to expire of accounts with "
        "no post due; 0 refreshes them only when a post for them is prepared.",
    )
    review_sync_minutes: float = Field(
        default=15,
        gt=0,
        description="How often workers sync each location's reviews (Google Business Profile, "
        "the sandbox); `POST /v1/reviews/sync` asks for one at once.",
    )
    review_full_scan_hours: float = Field(
        default=24,
        gt=0,
        description="How often a location's sync reads all its reviews rather than only "
        "the newest changes, to find reviews removed and replies made elsewhere that the "
        "network does not list as changed.",
    )
    worker_review_poll_seconds: float = Field(
        default=5,
        ge=0,
        description="How often workers look for locations whose review sync is due and for "
        "replies to reviews to send (the delay of an on-demand sync or a reply, at most); 0: "
        "these workers sync no reviews and send no replies.",
    )
    metrics_schedule: str = Field(
        default="1h,6h,24h,3d,7d,30d",
        description="When workers fetch a published post's figures, counted from its "
        "publishing: steps of minutes (m), hours (h) or days (d), each later than the one "
        "before. Accounts' own figures (followers) are fetched once a day.",
    )

    @model_validator(mode="after")
    def _pooler_beside_a_direct_connection(self) -> Settings:
        if self.transaction_pooler and not self.database_url:
            raise ValueError("transaction_pooler needs DATABASE_URL: the embedded server has none")
        if self.transaction_pooler and not self.direct_database_url:
            raise ValueError(
                "transaction_pooler needs direct_database_url (CRIER_DIRECT_DATABASE_URL): "
                "LISTEN cannot pass through a transaction pooler"
            )
        return self

    @field_validator("metrics_schedule")
    @classmethod
    def _steps(cls, value: str) -> str:
        metric_schedule.parse(value)
        return value

    worker_metrics_poll_seconds: float = Field(
        default=30,
        ge=0,
        description="How often workers look for posts and accounts whose figures are due "
        "to be fetched; 0: these workers fetch none.",
    )
    analytics_today_minutes: float = Field(
        default=60,
        ge=0,
        description="How often workers aggregate each workspace's day so far into its daily "
        "snapshots (complete days are aggregated after its local midnight); 0: only complete "
        "days.",
    )
    worker_export_poll_seconds: float = Field(
        default=2,
        ge=0,
        description="How often workers look for analytics exports to write and for export "
        "files due to be deleted; 0: these workers write none.",
    )
    analytics_export_days: float = Field(
        default=7,
        gt=0,
        description="How long an analytics export's file is kept for download.",
    )
    analytics_cache_mb: float = Field(
        default=32,
        ge=0,
        description="Megabytes of analytics answers (view data, queries) each API process "
        "keeps until the workspace's snapshots change; 0 keeps none.",
    )
    allow_loopback: bool = Field(
        default=False,
        validation_alias=AliasChoices("CRIER_ALLOW_LOOPBACK", "CRIER_WEBHOOK_ALLOW_LOOPBACK"),
        description="Let the servers users name (webhook endpoints, Mastodon instances) be "
        "on this machine (127.0.0.1, ::1), and Mastodon instances on plain http://. Private, "
        "link-local and metadata addresses are refused regardless. `crier run` allows it. "
        "(`CRIER_WEBHOOK_ALLOW_LOOPBACK` is read too.)",
    )
    webhook_retention_days: float = Field(
        default=30,
        ge=2,
        description="Keep webhook events (and their deliveries) this long; at least 2 days, "
        "beyond the retry schedule. Events with a delivery still pending are kept.",
    )
    webhook_disable_after_hours: float = Field(
        default=120, gt=0, description="Disable an endpoint after it fails this long in a row."
    )
    secret_key: str | None = Field(
        default=None,
        description=(
            "Key that encrypts platform tokens at rest (a Fernet key). Generated into the data "
            "folder when not given."
        ),
    )
    public_url: str | None = Field(
        default=None, description="Base URL clients use to reach the API, for printed links."
    )
    db_pool_size: int = Field(default=10, ge=1, description="Connections per process.")
    workers: int = Field(default=1, ge=1, le=64, description="API worker processes.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json` for one JSON object per log line."
    )
    worker_metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Where `crier worker` serves /metrics (on CRIER_HOST); 0 turns it off.",
    )

    oauth_redirect_origins: str = Field(
        default="",
        description="Origins (`https://app.example.com`, comma-separated) a connect's "
        "`redirect_to` may lead back to, beside this server's own (CRIER_PUBLIC_URL).",
    )
    bluesky_service_url: str = Field(
        default="https://bsky.social",
        description="Where Bluesky accounts sign in when the connect names no `service_url`.",
    )
    bluesky_web_url: str = Field(
        default="https://bsky.app", description="The web app that Bluesky permalinks point to."
    )
    bluesky_services: str = Field(
        default="",
        description="Only these Bluesky servers (host or host:port, comma-separated) may be "
        "named in a connect, besides the default one; any server when empty.",
    )
    mastodon_client_name: str = Field(
        default="Crier", description="The app name Crier registers on Mastodon instances."
    )
    mastodon_media_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a Mastodon media still processing is asked whether it is done.",
    )
    mastodon_instances: str = Field(
        default="",
        description="Only these Mastodon instances (host or host:port, comma-separated) may "
        "be connected; any instance when empty.",
    )
    mastodon_website: str | None = Field(
        default=None, description="The website shown with that app on Mastodon instances."
    )

    x_client_id: str | None = Field(
        default=None,
        description="The OAuth 2.0 Client ID of this server's X app; X accounts cannot be "
        "connected without it.",
    )
    x_client_secret: str | None = Field(
        default=None,
        repr=False,
        description="The app's Client Secret (a confidential client: Web App, Automated App "
        "or bot); leave unset for a public client.",
    )
    x_api_url: str = Field(default="https://api.x.com", description="X's API.")
    x_authorize_url: str = Field(
        default="https://x.com/i/oauth2/authorize",
        description="Where X asks a user to approve Crier.",
    )
    x_web_url: str = Field(default="https://x.com", description="Where X permalinks point.")
    x_media_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="The longest wait between two questions about a video X is processing "
        "(X says how long; this caps it).",
    )

    linkedin_client_id: str | None = Field(
        default=None,
        description="The Client ID of this server's LinkedIn app; LinkedIn accounts cannot be "
        "connected without it and its secret.",
    )
    linkedin_client_secret: str | None = Field(
        default=None, repr=False, description="The LinkedIn app's Primary Client Secret."
    )
    linkedin_pages_client_id: str | None = Field(
        default=None,
        description="The Client ID of this server's LinkedIn app with the Community Management "
        "API, for company pages (LinkedIn grants that product only to an app of its own); "
        "pages connect through the main app when unset.",
    )
    linkedin_pages_client_secret: str | None = Field(
        default=None, repr=False, description="That app's Primary Client Secret."
    )
    linkedin_api_url: str = Field(default="https://api.linkedin.com", description="LinkedIn's API.")
    linkedin_oauth_url: str = Field(
        default="https://www.linkedin.com/oauth/v2",
        description="LinkedIn's OAuth 2.0 endpoints (authorization and accessToken).",
    )
    linkedin_version: str = Field(
        default="202611",
        pattern=r"^\d{6}$",
        description="The LinkedIn API version (`YYYYMM`) every call names; LinkedIn retires "
        "each about a year after it came out.",
    )
    linkedin_web_url: str = Field(
        default="https://www.linkedin.com", description="Where LinkedIn permalinks point."
    )
    linkedin_media_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an image LinkedIn is processing is asked about."
    )

    google_client_id: str | None = Field(
        default=None,
        description="The OAuth client ID of this server's Google Cloud app (a web application "
        "with the Business Profile APIs enabled); Google Business Profile locations cannot "
        "be connected without it and its secret.",
    )
    google_client_secret: str | None = Field(
        default=None, repr=False, description="That OAuth client's secret."
    )
    google_authorize_url: str = Field(
        default="https://accounts.google.com/o/oauth2/v2/auth",
        description="Where Google asks a user to approve Crier.",
    )
    google_oauth_url: str = Field(
        default="https://oauth2.googleapis.com",
        description="Google's OAuth 2.0 token endpoint's server (`/token`).",
    )
    google_accounts_url: str = Field(
        default="https://mybusinessaccountmanagement.googleapis.com",
        description="The Business Profile account management API (business accounts).",
    )
    google_information_url: str = Field(
        default="https://mybusinessbusinessinformation.googleapis.com",
        description="The Business Profile business information API (locations).",
    )
    google_business_url: str = Field(
        default="https://mybusiness.googleapis.com",
        description="The Google My Business API v4 (reviews and local posts).",
    )
    google_performance_url: str = Field(
        default="https://businessprofileperformance.googleapis.com",
        description="The Business Profile Performance API (a location's figures by day).",
    )

    sandbox_host: str = Field(default="127.0.0.1", description="Where `crier sandbox` listens.")
    sandbox_port: int = Field(default=8001, ge=1, le=65535, description="Port of `crier sandbox`.")
    sandbox_url: str | None = Field(
        default=None,
        description="Where Crier reaches the sandbox platform; by default the local one.",
    )

    @property
    def resolved_sandbox_url(self) -> str:
        return (self.sandbox_url or f"http://{self.sandbox_host}:{self.sandbox_port}").rstrip("/")

    @cached_property
    def resolved_data_dir(self) -> Path:
        """The data folder as an absolute path, created if missing."""
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def redirect_origins(self) -> frozenset[str]:
        """Where a connect may send the browser back to: these origins and this server's."""
        given = {o.strip().rstrip("/") for o in self.oauth_redirect_origins.split(",")}
        return frozenset(o for o in given | {self.base_url} if o)

    @property
    def allowed_mastodon_instances(self) -> frozenset[str]:
        return _hosts(self.mastodon_instances)

    @property
    def allowed_bluesky_services(self) -> frozenset[str]:
        return _hosts(self.bluesky_services)

    @property
    def base_url(self) -> str:
        """The URL at which this server's API is reachable."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"


def _hosts(listed: str) -> frozenset[str]:
    """The hosts (or host:port) of a comma-separated setting, lower-cased."""
    return frozenset(h.strip().lower() for h in listed.split(",") if h.strip())
