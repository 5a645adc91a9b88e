"""Declaring a worker module's settings section: refused values stop the start, names clash."""

import pytest
from pydantic import BaseModel, Field

from app.core.config import SectionInvalid, Settings, read_section
from app.main import create_app
from app.workers import JobContext, RegistrationError
from app.workers.registry import Registry
from tests.support import DEVELOPMENT


class DigestSettings(BaseModel):
    hour: int = Field(6, alias="Hour", ge=0, le=23)
    recipients: list[str] = Field(default_factory=list, alias="Recipients")


def test_a_section_is_read_from_the_environment_with_nested_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("Digest__Hour", "7")
    monkeypatch.setenv("Digest__Recipients", '["ops@example.com"]')

    section = read_section("Digest", DigestSettings)

    assert (section.hour, section.recipients) == (7, ["ops@example.com"])
    assert read_section("Digest", DigestSettings, Hour=9).hour == 9


def test_a_refused_value_stops_the_app_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    registry.section("Digest")(DigestSettings)

    @registry.manual()
    async def digest(ctx: JobContext) -> None:
        return None

    monkeypatch.setenv("Digest__Hour", "25")
    with pytest.raises(SectionInvalid, match="Digest:Hour: Input should be less than or equal"):
        read_section("Digest", DigestSettings)
    with pytest.raises(RegistrationError, match=r"settings section 'Digest' \(DigestSettings\)"):
        create_app(Settings(App=DEVELOPMENT), registry)


def test_a_section_may_not_take_the_name_of_the_apps_own_or_another() -> None:
    registry = Registry()
    registry.section("Digest")(DigestSettings)

    class Other(BaseModel):
        pass

    with pytest.raises(RegistrationError, match="one of the app's own"):
        registry.section("Worker")(Other)
    with pytest.raises(RegistrationError, match="declared twice"):
        registry.section("Digest")(Other)


def test_a_handler_asking_for_an_undeclared_section_is_told_how_to_declare_it() -> None:
    context = JobContext.__new__(JobContext)
    context.sections = {}

    with pytest.raises(LookupError, match=r"@registry.section\(\"Name\"\)"):
        context.section(DigestSettings)
