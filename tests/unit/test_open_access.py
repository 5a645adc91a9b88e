"""Secure by default: outside Development the app does not start without its tokens, and says
which setting is missing; open access is a choice made by name."""

from typing import Any

import pytest

from app.core.config import Settings
from app.core.open_access import OpenAccessRefused, open_audiences
from app.main import create_app
from tests.support import DEVELOPMENT


def settings_of(sections: dict[str, dict[str, Any]]) -> Settings:
    return Settings.model_validate(sections)


BOTH_TOKENS = {"Dapr": {"AppApiToken": "sidecar-s3cret"}, "Api": {"OperatorToken": "op-s3cret"}}


def test_the_default_environment_is_production_and_refuses_to_start_without_tokens() -> None:
    settings = Settings()
    assert settings.app.environment == "Production"
    with pytest.raises(OpenAccessRefused) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "refusing to start in environment 'Production'" in message
    assert "APP_API_TOKEN" in message
    assert "Api:OperatorToken" in message


@pytest.mark.parametrize(
    ("given", "missing", "present"),
    [
        ({"Dapr": {"AppApiToken": "t"}}, "Api:OperatorToken", "APP_API_TOKEN"),
        ({"Api": {"OperatorToken": "t"}}, "APP_API_TOKEN", "Api:OperatorToken"),
    ],
)
def test_each_missing_token_is_named_alone(
    given: dict[str, dict[str, str]], missing: str, present: str
) -> None:
    with pytest.raises(OpenAccessRefused, match=missing) as refused:
        create_app(settings_of(given))
    assert present not in str(refused.value)


def test_with_both_tokens_production_starts() -> None:
    app = create_app(settings_of(BOTH_TOKENS))
    assert app.title == "aevatar-worker"


def test_development_and_the_named_opt_ins_may_run_open() -> None:
    assert open_audiences(Settings(App=DEVELOPMENT)) != []  # open, yet allowed to start
    create_app(Settings(App=DEVELOPMENT))
    opted_in = Settings(Dapr={"AllowAnonymousSidecar": True}, Api={"AllowAnonymousOperators": True})
    assert open_audiences(opted_in) == []
    create_app(opted_in)


def test_an_environment_that_is_not_development_counts_as_production() -> None:
    for environment in ("Staging", "Developement", "prod", ""):
        with pytest.raises(OpenAccessRefused):
            create_app(Settings(App={"Environment": environment}))
    assert Settings(App={"Environment": " development "}).app.is_development
