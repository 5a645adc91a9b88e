"""Settings: `appsettings.json` with the original service's keys, overridable by environment.

Precedence, highest first: keyword arguments, environment variables (`ConnectionStrings__Default`,
`Dapr__HttpPort`, ...), the variables the Dapr CLI sets for the app (`DAPR_HTTP_PORT`,
`DAPR_GRPC_PORT`, `APP_API_TOKEN`), then the JSON file named by `AEVATAR_SETTINGS_FILE`
(default `appsettings.json`).
"""

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.core.errors import StartRefused

LogLevel = Literal["Verbose", "Debug", "Information", "Warning", "Error", "Fatal"]


class _Section(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class AppSection(_Section):
    name: str = Field("Aevatar.Worker", alias="Name")
    instance_id: str | None = Field(None, alias="InstanceId")
    """The instance's name in the run history (a pod name); the process id is appended."""
    environment: str = Field("Production", alias="Environment")
    """`Development` (what `make run` sets) lets the app start without its tokens; any other
    value is production-like and needs them (app/core/open_access.py)."""

    @property
    def is_development(self) -> bool:
        return self.environment.strip().lower() == "development"


class ConnectionStringsSection(_Section):
    default: str = Field("mongodb://127.0.0.1:27017/Aevatar?retryWrites=false", alias="Default")


class DaprSection(_Section):
    http_port: int = Field(3500, alias="HttpPort")
    grpc_port: int = Field(50001, alias="GrpcPort")
    host: str = Field("127.0.0.1", alias="Host")
    pubsub_name: str = Field("pubsub", alias="PubSubName")
    api_token: str | None = Field(None, alias="ApiToken")
    app_api_token: str | None = Field(None, alias="AppApiToken")
    allow_anonymous_sidecar: bool = Field(False, alias="AllowAnonymousSidecar")
    """Outside Development, serve the sidecar's routes without APP_API_TOKEN: an explicit
    choice (a network policy that lets only the sidecar reach the app, for example)."""
    host_actors: bool = Field(True, alias="HostActors")
    """Host the actor types here (start-up then waits for the sidecar). Off only for tests of
    the app without a sidecar: then every actor call fails over to MongoDB's guards."""


class WorkerSection(_Section):
    """The run engine. Not in the original's appsettings.json: new keys, same conventions."""

    lease_seconds: float = Field(15.0, alias="LeaseSeconds", gt=0)
    poll_interval_seconds: float = Field(0.5, alias="PollIntervalSeconds", gt=0)
    max_in_flight: int = Field(32, alias="MaxInFlight", ge=1)
    shutdown_grace_seconds: float = Field(10.0, alias="ShutdownGraceSeconds", ge=0)
    run_retention_days: float = Field(30.0, alias="RunRetentionDays", gt=0)
    heartbeat_seconds: float = Field(5.0, alias="HeartbeatSeconds", gt=0)
    """How often each instance writes its heartbeat and the run statistics it gathered."""
    modules: list[str] = Field(default_factory=list, alias="Modules")
    """Modules to import at start-up, whose decorated functions register more workers."""
    journal_dir: str = Field(
        str(Path(tempfile.gettempdir()) / "aevatar-worker-journal"), alias="JournalDir"
    )
    """Where each instance notes the deliveries it is running before they are stored, so that
    after a crash it counts them as attempts that died with it (app/dispatch/delivery_journal.py).
    Keep it across restarts of the process (on Kubernetes: an emptyDir volume)."""

    def lease_until(self, now: datetime) -> datetime:
        """Until when a run claimed (or renewed) at `now` is this instance's."""
        return now + timedelta(seconds=self.lease_seconds)


class ApiSection(_Section):
    operator_token: str | None = Field(None, alias="OperatorToken")
    """When set, every route but the probes and the sidecar's requires
    `Authorization: Bearer <token>`."""
    viewer_token: str | None = Field(None, alias="ViewerToken")
    """A read-only token: GET routes of the operator API and the dashboard, no action."""
    allow_anonymous_operators: bool = Field(False, alias="AllowAnonymousOperators")
    """Outside Development, serve the operator API and the dashboard without a token: anyone who
    reaches the app can then trigger, cancel and requeue jobs. Never the default."""
    login_failures_allowed: int = Field(5, alias="LoginFailuresAllowed", ge=1)
    """Wrong dashboard tokens from one client address, or under one name, before its logins
    are refused for LoginLockoutMinutes."""
    login_lockout_minutes: float = Field(15.0, alias="LoginLockoutMinutes", gt=0)
    session_hours: float = Field(12.0, alias="SessionHours", gt=0)
    """How long a dashboard login lasts."""
    max_request_bytes: int = Field(1_048_576, alias="MaxRequestBytes", ge=1024)
    """Larger request bodies are refused (413; a delivery from the sidecar is dropped)."""


class MinimumLevel(_Section):
    default: LogLevel = Field("Information", alias="Default")
    override: dict[str, LogLevel] = Field(default_factory=dict, alias="Override")


class SerilogSection(_Section):
    """Named after the original's Serilog section so that its appsettings.json keeps working."""

    minimum_level: MinimumLevel = Field(default_factory=MinimumLevel, alias="MinimumLevel")
    format: Literal["text", "json"] = Field("text", alias="Format")


class _FileAndEnvironment(BaseSettings):
    """Sources, highest first: keyword arguments, environment variables, then the JSON file
    named by `AEVATAR_SETTINGS_FILE`."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        # Exact names, as in appsettings.json: a case-insensitive match would lower-case the
        # nested keys and lose to the JSON file's keys in the merge.
        case_sensitive=True,
        extra="ignore",
    )

    @classmethod
    def _between_environment_and_file(
        cls, settings_cls: type[BaseSettings]
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        json_file = os.environ.get("AEVATAR_SETTINGS_FILE", "appsettings.json")
        return (
            init_settings,
            env_settings,
            *cls._between_environment_and_file(settings_cls),
            JsonConfigSettingsSource(settings_cls, json_file=json_file),
        )


class Settings(_FileAndEnvironment):
    model_config = SettingsConfigDict(frozen=True)

    app: AppSection = Field(default_factory=AppSection, alias="App")
    connection_strings: ConnectionStringsSection = Field(
        default_factory=ConnectionStringsSection, alias="ConnectionStrings"
    )
    dapr: DaprSection = Field(default_factory=DaprSection, alias="Dapr")
    serilog: SerilogSection = Field(default_factory=SerilogSection, alias="Serilog")
    worker: WorkerSection = Field(default_factory=WorkerSection, alias="Worker")
    api: ApiSection = Field(default_factory=ApiSection, alias="Api")

    @property
    def mongo_uri(self) -> str:
        return self.connection_strings.default

    def secrets(self) -> list[str]:
        """What no log line may carry: the tokens and the database password."""
        password = urlsplit(self.mongo_uri).password
        values = [
            self.dapr.api_token,
            self.dapr.app_api_token,
            self.api.operator_token,
            self.api.viewer_token,
        ]
        return [value for value in [*values, password and unquote(password)] if value]

    @property
    def sidecar_http_url(self) -> str:
        return f"http://{self.dapr.host}:{self.dapr.http_port}"

    @classmethod
    def _between_environment_and_file(
        cls, settings_cls: type[BaseSettings]
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (DaprCliEnvironment(settings_cls),)


SectionT = TypeVar("SectionT", bound=BaseModel)


class SectionInvalid(StartRefused, ValueError):
    """A worker module's settings section has a value its model refuses."""


def read_section(name: str, model: type[SectionT], **overrides: Any) -> SectionT:
    """A worker module's own section, `name` in appsettings.json, overridable by environment
    variables (`<name>__<Key>`) as every other section; `overrides` win over both."""
    reader = create_model(
        f"{model.__name__}Reader",
        __base__=_FileAndEnvironment,
        value=(model, Field(default_factory=model, alias=name)),
    )
    given = {name: overrides} if overrides else {}
    try:
        section: SectionT = cast(Any, reader)(**given).value
    except ValidationError as exc:
        problems = "; ".join(
            f"{name}:{':'.join(str(p) for p in error['loc'][1:])}: {error['msg']}"
            for error in exc.errors()
        )
        raise SectionInvalid(f"settings section {name!r} ({model.__name__}): {problems}") from exc
    return section


_DAPR_CLI_VARIABLES = {
    "DAPR_HTTP_PORT": "HttpPort",
    "DAPR_GRPC_PORT": "GrpcPort",
    "DAPR_API_TOKEN": "ApiToken",
    "APP_API_TOKEN": "AppApiToken",
}


class DaprCliEnvironment(PydanticBaseSettingsSource):
    """The variables `dapr run` gives the app: its sidecar's ports and the app token."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        dapr = {
            key: os.environ[var] for var, key in _DAPR_CLI_VARIABLES.items() if os.environ.get(var)
        }
        return {"Dapr": dapr} if dapr else {}
