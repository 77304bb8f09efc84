"""Settings: one frozen object, built once from the environment (``NOTEPIPE_*``).

Nothing reads the environment at import time; call :func:`load_settings`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from notepipe.errors import ConfigurationError
from notepipe.redact import redact_url

DEFAULT_STAGES: tuple[str, ...] = (
    "notepipe.stages.normalize:normalize",
    "notepipe.stages.language:detect_language",
    "notepipe.stages.keywords:extract_keywords",
    "notepipe.stages.entities:extract_entities",
    "notepipe.stages.reading_time:reading_time",
    "notepipe.stages.content_hash:content_hash",
)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """All pipeline settings. Durations are in seconds.

    Secrets (the URLs, which carry passwords) are ``SecretStr``: their repr and
    ``str`` are masked; use :attr:`redis_dsn` / :attr:`database_dsn` to connect.
    """

    model_config = SettingsConfigDict(env_prefix="NOTEPIPE_", frozen=True, extra="ignore")

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    database_url: SecretStr = SecretStr("postgresql://notepipe@127.0.0.1:5432/notepipe")
    queue_name: str = Field("note_enrichment", min_length=1)

    job_timeout: float = Field(600.0, gt=0, description="RQ job_timeout of one attempt")
    result_ttl: int = Field(86_400, ge=0, description="how long RQ keeps a finished job")
    failure_ttl: int = Field(7 * 86_400, ge=0, description="how long RQ keeps a failed job")
    retry_max: int = Field(3, ge=0, le=100, description="retries after the first attempt")
    retry_intervals: Annotated[tuple[float, ...], NoDecode] = Field(
        (10.0, 30.0, 60.0), description="seconds before retry 1, 2, ...; the last repeats"
    )

    lease_ttl: float = Field(15.0, gt=0, description="a claim's lease; renewed by heartbeat")
    heartbeat_interval: float | None = Field(None, gt=0, description="default lease_ttl / 3")
    lease_grace: float = Field(2.0, ge=0, description="slack after lease expiry before recovery")
    enqueue_grace: float = Field(5.0, ge=0, description="age before a pending note is re-enqueued")
    reconcile_interval: float = Field(5.0, gt=0, description="seconds between reconciler passes")
    maintenance_interval: int = Field(60, ge=1, description="RQ worker maintenance interval")
    dispatch_slack: float = Field(
        5.0, ge=0, description="allowance per attempt for queueing, scheduling and DB latency"
    )

    stages: Annotated[tuple[str, ...], NoDecode] = DEFAULT_STAGES
    stage_max_chars: int = Field(
        8192,
        ge=0,
        description="characters of a note the language and keyword stages analyse (0: all); "
        "caps one note's enrichment cost (the content hash, entities and reading time "
        "still read the whole note)",
    )
    worker_class: str = "rq.worker.Worker"
    worker_ttl: int = Field(35, ge=5)

    trace_redis: bool = Field(
        False, description="a span per Redis command (RQ issues a dozen per job); off by default"
    )
    trace_db: bool = Field(
        False,
        description="a span per PostgreSQL statement (two to four per note); off by default",
    )

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    db_pool_min: int = Field(1, ge=0)
    db_pool_max: int = Field(10, ge=1)
    max_content_bytes: int = Field(64 * 1024, ge=1)

    @field_validator("retry_intervals", mode="before")
    @classmethod
    def _parse_intervals(cls, value: Any) -> Any:
        value = _split_csv(value)
        if isinstance(value, int | float):
            return (float(value),)
        return value

    @field_validator("retry_intervals")
    @classmethod
    def _check_intervals(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError(
                "give at least one retry interval, e.g. NOTEPIPE_RETRY_INTERVALS=10,30"
            )
        if any(v < 0 for v in value):
            raise ValueError("retry intervals must be >= 0 seconds")
        return value

    @field_validator("stages", mode="before")
    @classmethod
    def _parse_stages(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("NOTEPIPE_REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("NOTEPIPE_DATABASE_URL must start with postgresql://")
        return value

    @model_validator(mode="after")
    def _check_lease(self) -> Settings:
        if self.effective_heartbeat_interval >= self.lease_ttl:
            raise ValueError(
                f"heartbeat_interval ({self.effective_heartbeat_interval}s) must be shorter than "
                f"lease_ttl ({self.lease_ttl}s), or a healthy attempt loses its lease"
            )
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        return self

    @property
    def redis_dsn(self) -> str:
        return self.redis_url.get_secret_value()

    @property
    def database_dsn(self) -> str:
        return self.database_url.get_secret_value()

    @property
    def effective_heartbeat_interval(self) -> float:
        return self.heartbeat_interval or self.lease_ttl / 3

    @property
    def max_attempts(self) -> int:
        return 1 + self.retry_max

    def retry_interval(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based); the last interval repeats."""
        index = min(max(retry_number, 1), len(self.retry_intervals)) - 1
        return self.retry_intervals[index]

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict for logs and reports, with passwords masked."""
        data = self.model_dump()
        data["redis_url"] = redact_url(self.redis_dsn)
        data["database_url"] = redact_url(self.database_dsn)
        return data

    def to_env(self) -> dict[str, str]:
        """These settings as ``NOTEPIPE_*`` variables (secrets included: for child processes)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                text = value.get_secret_value()
            elif isinstance(value, tuple):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            env[f"NOTEPIPE_{name.upper()}"] = text
        return env

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            if key in ("redis_url", "database_url") and isinstance(value, SecretStr):
                yield key, redact_url(value.get_secret_value())
            else:
                yield key, value


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from ``NOTEPIPE_*`` environment variables plus ``overrides``.

    Raises :class:`ConfigurationError` with every invalid field named.
    """
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"NOTEPIPE_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid notepipe settings: {problems}") from None
