import json
from pathlib import Path

import pytest

from app.core.config import Settings


@pytest.fixture
def appsettings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "appsettings.json"
    path.write_text(
        json.dumps(
            {
                "App": {"Name": "From.File"},
                "ConnectionStrings": {"Default": "mongodb://file:27017/Aevatar"},
                "Dapr": {"HttpPort": 3600, "GrpcPort": 50100},
                "Serilog": {"MinimumLevel": {"Default": "Debug", "Override": {"pymongo": "Error"}}},
            }
        )
    )
    monkeypatch.setenv("AEVATAR_SETTINGS_FILE", str(path))
    for name in ("DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "DAPR_API_TOKEN", "APP_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.mark.usefixtures("appsettings")
def test_the_original_keys_are_read_from_appsettings_json() -> None:
    settings = Settings()

    assert settings.app.name == "From.File"
    assert settings.mongo_uri == "mongodb://file:27017/Aevatar"
    assert settings.dapr.http_port == 3600
    assert settings.serilog.minimum_level.default == "Debug"
    assert settings.serilog.minimum_level.override == {"pymongo": "Error"}


@pytest.mark.usefixtures("appsettings")
def test_environment_variables_override_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ConnectionStrings__Default", "mongodb://env:27017/Other")
    monkeypatch.setenv("Serilog__MinimumLevel__Override__pymongo", "Warning")

    settings = Settings()

    assert settings.mongo_uri == "mongodb://env:27017/Other"
    assert settings.serilog.minimum_level.override == {"pymongo": "Warning"}
    assert settings.app.name == "From.File"


@pytest.mark.usefixtures("appsettings")
def test_the_ports_dapr_run_gives_the_app_win_over_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAPR_HTTP_PORT", "3999")
    monkeypatch.setenv("APP_API_TOKEN", "tok")

    settings = Settings()

    assert settings.dapr.http_port == 3999
    assert settings.dapr.grpc_port == 50100
    assert settings.dapr.app_api_token == "tok"


@pytest.mark.usefixtures("appsettings")
def test_an_explicit_override_wins_over_what_dapr_run_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAPR_HTTP_PORT", "3999")
    monkeypatch.setenv("Dapr__HttpPort", "4000")

    assert Settings().dapr.http_port == 4000


def test_an_unknown_log_level_is_refused(appsettings: Path) -> None:
    appsettings.write_text(json.dumps({"Serilog": {"MinimumLevel": {"Default": "Loud"}}}))

    with pytest.raises(ValueError, match="Default"):
        Settings()
