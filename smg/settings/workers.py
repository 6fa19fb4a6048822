"""The worker side of the configuration model: which workers, how one is chosen, retries, breakers,
health probes (see `smg.settings.groups` for the rules every group follows)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass

from smg.settings.fields import (
    ENTRY_INPUT,
    GROUP_CONFIG,
    EntryKey,
    EntryUrl,
    FileSection,
    Flag,
    NotBlank,
    Switch,
    UrlPath,
    WorkerUrls,
)

Policy = Literal["round_robin", "random", "least_load", "power_of_two", "cache_aware"]
POLICIES: tuple[str, ...] = get_args(Policy)


@dataclass(frozen=True, config=GROUP_CONFIG)
class WorkerEntry:
    """A worker listed in the config file: its URL and the upstream key sent to it (never shown)."""

    url: EntryUrl
    api_key: EntryKey | None = Field(default=None, repr=False)


@dataclass(frozen=True, config=GROUP_CONFIG)
class WorkerSettings:
    """Which workers are registered at start-up, how one is chosen, how long one attempt may take."""

    urls: Annotated[WorkerUrls, Flag("worker-urls")] = Field(
        default=(), description="worker base URLs, e.g. http://127.0.0.1:8000"
    )
    policy: Annotated[Policy, Flag("policy")] = Field(
        default="cache_aware", description="worker selection policy"
    )
    api_key: Annotated[EntryKey | None, Flag("worker-api-key")] = Field(
        default=None,
        repr=False,
        description="upstream API key sent to the --worker-urls workers (never logged)",
    )
    request_timeout_secs: Annotated[float, Flag("request-timeout-secs")] = Field(
        default=1800.0, gt=0, description="timeout of one worker attempt"
    )
    file_path: Annotated[NotBlank | None, Flag("worker-file")] = Field(
        default=None, description="YAML or JSON file listing workers, watched for changes"
    )
    entries: Annotated[
        tuple[Annotated[WorkerEntry, ENTRY_INPUT], ...],
        FileSection("workers", "workers registered at start-up: URLs or {url, api_key} mappings"),
    ] = ()

    @property
    def static(self) -> tuple[WorkerEntry, ...]:
        """Every worker registered at start-up: the ``--worker-urls`` ones (with ``--worker-api-key``),
        then the config file's entries (an entry without a key of its own gets ``--worker-api-key``)."""
        return tuple(WorkerEntry(url, self.api_key) for url in self.urls) + tuple(
            WorkerEntry(e.url, self.api_key) if e.api_key is None else e for e in self.entries
        )

    @model_validator(mode="after")
    def _each_worker_once(self) -> WorkerSettings:
        if self.entries:
            seen: set[str] = set(self.urls)
            for entry in self.entries:
                if entry.url in seen:
                    raise ValueError(f"worker {entry.url!r} is listed twice")
                seen.add(entry.url)
        return self


@dataclass(frozen=True, config=GROUP_CONFIG)
class RetrySettings:
    """Retries of a failed worker attempt, with exponential backoff and jitter."""

    max_retries: Annotated[int, Flag("retry-max-retries")] = Field(
        default=5, ge=1, description="total attempts per request, the first included"
    )
    initial_backoff_ms: Annotated[float, Flag("retry-initial-backoff-ms")] = Field(
        default=50.0, ge=0, description="backoff before the first retry"
    )
    max_backoff_ms: Annotated[float, Flag("retry-max-backoff-ms")] = Field(
        default=30_000.0, ge=0, description="upper bound of one backoff"
    )
    backoff_multiplier: Annotated[float, Flag("retry-backoff-multiplier")] = Field(
        default=1.5, ge=1, lt=1e6, description="growth factor between backoffs (>= 1)"
    )
    jitter_factor: Annotated[float, Flag("retry-jitter-factor")] = Field(
        default=0.2, ge=0, le=1, description="relative jitter of a backoff (0..1)"
    )
    enabled: Annotated[Switch, Flag("disable-retries", invert=True)] = Field(
        default=True, description="one attempt per request"
    )

    @property
    def attempts(self) -> int:
        """Total attempts per request (``--retry-max-retries`` counts attempts, as SMG does)."""
        return self.max_retries if self.enabled else 1


@dataclass(frozen=True, config=GROUP_CONFIG)
class BreakerSettings:
    """A circuit breaker per worker (and per MCP server)."""

    failure_threshold: Annotated[int, Flag("cb-failure-threshold")] = Field(
        default=10, ge=1, description="consecutive failures that open a worker's breaker"
    )
    success_threshold: Annotated[int, Flag("cb-success-threshold")] = Field(
        default=3, ge=1, description="successes in half-open that close it again"
    )
    timeout_secs: Annotated[float, Flag("cb-timeout-duration-secs")] = Field(
        default=60.0, gt=0, description="time a breaker stays open before half-open"
    )
    enabled: Annotated[Switch, Flag("disable-circuit-breaker", invert=True)] = Field(
        default=True, description="never open breakers"
    )


@dataclass(frozen=True, config=GROUP_CONFIG)
class HealthSettings:
    """Active health probes of the workers."""

    interval_secs: Annotated[float, Flag("health-check-interval-secs")] = Field(
        default=60.0, gt=0, description="time between health probes of a worker"
    )
    timeout_secs: Annotated[float, Flag("health-check-timeout-secs")] = Field(
        default=5.0, gt=0, description="timeout of one health probe"
    )
    failure_threshold: Annotated[int, Flag("health-failure-threshold")] = Field(
        default=3, ge=1, description="consecutive failed probes that mark a worker unhealthy"
    )
    success_threshold: Annotated[int, Flag("health-success-threshold")] = Field(
        default=2, ge=1, description="consecutive good probes that mark it healthy again"
    )
    endpoint: Annotated[UrlPath, Flag("health-check-endpoint")] = Field(
        default="/health", description="path probed on each worker"
    )
    enabled: Annotated[Switch, Flag("disable-health-check", invert=True)] = Field(
        default=True, description="do not probe; every worker counts as healthy"
    )
