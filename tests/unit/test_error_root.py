"""One error root: every exception the service defines descends from `AevatarError`, a
refusal says its own HTTP status, and the API answers every refusal the same way."""

import importlib
import inspect
import pkgutil

import httpx
from fastapi import FastAPI

import app
from app.api.errors import install_error_handlers
from app.core.errors import AevatarError, Refused, StartRefused
from app.dispatch.errors import PayloadInvalid, UnknownJob
from app.workers.errors import GiveUp, RetryLater, WorkerError


def defined_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(app.__path__, "app."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_exception_of_the_service_descends_from_the_one_root() -> None:
    exceptions = defined_exceptions()
    assert len(exceptions) >= 20, "the walk found the service's exceptions"
    strays = [e.__qualname__ for e in exceptions if not issubclass(e, AevatarError)]
    assert strays == []


def test_the_branches_a_caller_maps_by_class() -> None:
    assert issubclass(RetryLater, WorkerError)
    assert issubclass(GiveUp, WorkerError)
    refusals = [e for e in defined_exceptions() if issubclass(e, Refused) and e is not Refused]
    assert {e.__name__ for e in refusals} >= {
        "UnknownJob", "UnknownRun", "UnknownSchedule", "PayloadInvalid", "RunNotActionable",
        "SidecarError", "StillStarting", "ActionRefused",
    }  # fmt: skip
    for refusal in refusals:
        own = [
            c for c in refusal.__mro__[: refusal.__mro__.index(Refused)] if "status_code" in vars(c)
        ]
        assert own, f"{refusal.__name__} does not say its HTTP status"
    starts = {e.__name__ for e in defined_exceptions() if issubclass(e, StartRefused)}
    assert starts >= {"RegistrationError", "SectionInvalid", "OpenAccessRefused"}


async def test_a_refusal_is_answered_with_its_status_detail_and_fields() -> None:
    api = FastAPI()
    install_error_handlers(api)

    @api.get("/unknown")
    async def unknown() -> None:
        raise UnknownJob("nope")

    @api.get("/invalid")
    async def invalid() -> None:
        raise PayloadInvalid("job", "bad", [{"msg": "bad"}])

    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        unknown_answer = await client.get("/unknown")
        invalid_answer = await client.get("/invalid")
    assert unknown_answer.status_code == 404
    assert "no job named 'nope'" in unknown_answer.json()["detail"]
    assert invalid_answer.status_code == 422
    assert invalid_answer.json()["errors"] == [{"msg": "bad"}]
