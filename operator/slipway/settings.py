"""The one typed settings object, loaded from `SLIPWAY_*` environment variables at start-up.

Nothing else in the package reads `os.environ`: code receives a `Settings` (or the fields it
needs) from its caller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_PREFIX = "SLIPWAY_"
#: Variables of the task-tool contract (set in a tool's environment, not the operator's).
TOOL_VARIABLES = frozenset({"SLIPWAY_EVENT", "SLIPWAY_CALLBACK_URL", "SLIPWAY_CALLBACK_TOKEN"})


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slipway"


class Settings(BaseModel):
    """Process-wide configuration; each field is `SLIPWAY_<FIELD NAME IN CAPITALS>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str | None = Field(
        default=None,
        description="Namespace the operator watches; unset means every namespace.",
    )
    gateway_address: str = Field(
        default="0.0.0.0:8080",
        description="host:port the event gateway listens on.",
    )
    gateway_url: str = Field(
        default="http://127.0.0.1:8080",
        description="URL tools are told to POST their responses to (in a cluster: the Service).",
    )
    event_type_prefix: str = Field(
        default="",
        description="Optional prefix put in front of every event type, e.g. `dev.slipway.`.",
    )
    callback_key: str | None = Field(
        default=None,
        description=(
            "The key that signs tools' callback tokens; unset: a random key kept in Secret "
            "`callback_key_secret` (created once, shared by every replica)."
        ),
    )
    callback_key_secret: str = Field(
        default="slipway-callback-key",
        description=(
            "The Secret holding the callback key: in `namespace` when set, else in the "
            "operator's own namespace (its pod's; out of a cluster, the kubeconfig context's)."
        ),
    )
    upload_dir: Path | None = Field(
        default=None,
        description=(
            "Folder the gateway stores uploaded files in (content-addressed by sha256); in a "
            "cluster a PersistentVolume. Unset: `<cache_dir>/uploads`."
        ),
    )
    upload_max_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest file the web page may upload."
    )
    upload_grace_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="How long an upload no run refers to is kept (time to start its run).",
    )
    upload_sweep_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How often uploads no run refers to (any more) are looked for and removed.",
    )
    memory_trim_seconds: float = Field(
        default=30.0,
        ge=0,
        description=(
            "How often the operator hands memory it freed back to the system (glibc's "
            "malloc_trim; large run data leaves big freed blocks that would otherwise keep its "
            "resident memory at the peak of a burst); 0: never."
        ),
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where the local control plane keeps binaries and state (never the repo).",
    )
    kubebuilder_assets: Path | None = Field(
        default=None,
        description=(
            "Read from KUBEBUILDER_ASSETS (no prefix, as envtest names it): a folder holding "
            "etcd and kube-apiserver binaries to use instead of building them."
        ),
    )
    fault_point: str | None = Field(
        default=None,
        description="Tests only: exit hard at this named crash point (see slipway.faults).",
    )
    history_successful_runs: int = Field(
        default=100,
        ge=0,
        description=(
            "Finished runs with pass or warning kept per Shipyard, stage and sequence when the "
            "Shipyard's `history` does not say (older ones are deleted)."
        ),
    )
    history_failed_runs: int = Field(
        default=100,
        ge=0,
        description="Finished runs with fail kept likewise.",
    )
    history_ttl_after_finished: str | None = Field(
        default=None,
        description=(
            "Delete finished runs this long after they finished (a duration such as `168h`) "
            "when the Shipyard does not say; unset: by count only."
        ),
    )
    history_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between two history clean-ups (a finished run also triggers one).",
    )
    history_deletes_per_second: float = Field(
        default=5.0,
        gt=0,
        description="Pace of the clean-up's deletions, so it never floods the API server.",
    )
    identity: str | None = Field(
        default=None,
        description=(
            "This replica's name among its peers (its Lease's holder): the Pod's name in a "
            "cluster (POD_NAME via the downward API); unset: the host name and a random suffix."
        ),
    )
    lease_namespace: str | None = Field(
        default=None,
        description=(
            "Where the replicas keep their member Leases: unset, `namespace` when that is set, "
            "else the operator's own namespace (its Pod's; out of a cluster, the kubeconfig "
            "context's)."
        ),
    )
    lease_duration: float = Field(
        default=15.0,
        gt=0,
        description=(
            "Seconds a replica's Lease stays fresh without renewal: a replica that stops "
            "renewing loses its runs to the others this long after its last renewal."
        ),
    )
    lease_renew: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds between renewals of a replica's Lease (at most half `lease_duration`); "
            "also how often each replica lists its peers."
        ),
    )
    cluster_port: int = Field(
        default=16443,
        description="Secure port of the local control plane's kube-apiserver.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description=(
            "Port of the Prometheus `/metrics` endpoint (its own port, on the gateway's "
            "interface); 0 or empty: no endpoint. The Deployment in manifests/ sets 9090."
        ),
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "`text`: one readable line per message; `json`: one JSON object per line, with "
            "the namespace, name and context of the run or execution it is about."
        ),
    )

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return 0 if value in ("", None) else value

    # ---------------------------------------------------------------- limits (docs/events.md)
    gateway_max_body_bytes: int = Field(
        default=1 << 20, gt=0, description="Largest request body the gateway reads (413 above)."
    )
    gateway_max_line_bytes: int = Field(
        default=8190, gt=0, description="Longest request line, path and query included (414)."
    )
    gateway_max_field_bytes: int = Field(
        default=8190, gt=0, description="Longest header, name and value (431 above)."
    )
    gateway_max_headers: int = Field(
        default=100, gt=0, description="Most headers in one request (431 above)."
    )
    gateway_max_json_depth: int = Field(
        default=32, gt=0, description="Deepest nesting of arrays and objects in a body (413)."
    )
    gateway_max_json_keys: int = Field(
        default=10_000, gt=0, description="Most object keys in one body, all levels (413)."
    )
    gateway_max_json_string: int = Field(
        default=131_072, gt=0, description="Longest string (key or value) in a body (413)."
    )
    gateway_header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a connection may take to send a request's head, and may stay "
        "idle between requests; then it is closed (408 if a request was begun).",
    )
    gateway_body_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a client may take to send a body (408)."
    )
    gateway_api_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds the gateway waits for one Kubernetes API call before it answers "
        "503 with Retry-After.",
    )
    gateway_max_inflight: int = Field(
        default=128,
        gt=0,
        description="Requests the gateway works on at once; more are answered 503 at once.",
    )
    gateway_review_concurrency: int = Field(
        default=8, gt=0, description="TokenReviews and SubjectAccessReviews in flight at once."
    )
    gateway_review_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long an accepted token's review is reused."
    )
    gateway_review_negative_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a refused token (401/403) is refused without asking again.",
    )
    gateway_retry_after_seconds: int = Field(
        default=5, gt=0, description="The Retry-After of a 503 (API server slow or down, busy)."
    )
    max_run_data_bytes: int = Field(
        default=512 * 1024,
        gt=0,
        description="Largest run data (JSON): a trigger over it gets 413; a task output that "
        "would make the run's data larger fails the task (DataTooLarge).",
    )
    max_task_output_bytes: int = Field(
        default=256 * 1024,
        gt=0,
        description="Largest output of one task, all its providers together (JSON); larger "
        "fails the task (DataTooLarge).",
    )

    @model_validator(mode="after")
    def _renew_within_duration(self) -> Settings:
        if self.lease_renew * 2 > self.lease_duration:
            raise ValueError(
                f"lease_renew ({self.lease_renew} s) must be at most half of lease_duration "
                f"({self.lease_duration} s): a replica must renew at least twice per Lease"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment); unknown
        `SLIPWAY_*` variables are an error, so a typo does not silently do nothing."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        known = {name.upper(): name for name in cls.model_fields}
        for key, value in env.items():
            if not key.startswith(ENV_PREFIX) or key in TOOL_VARIABLES:
                continue
            name = key[len(ENV_PREFIX) :]
            if name not in known:
                raise ValueError(f"unknown setting {key}; known: {sorted(known)}")
            values[known[name]] = value
        if env.get("KUBEBUILDER_ASSETS"):
            values["kubebuilder_assets"] = env["KUBEBUILDER_ASSETS"]
        return cls.model_validate(values)
