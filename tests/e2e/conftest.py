"""The real stack: workers and their daprd started by the Dapr CLI from the project's dapr.yaml.

`make up` (or `make test`) must have started Redis, the MongoDB-wire server, placement and
scheduler. Each worker runs from the committed dapr.yaml with other ports (so that a `make run`
on the same machine is left alone), a database of its own, the test workers of
`tests/workers.py` loaded through Worker:Modules, and an operator token.
"""

from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app.db.mongo import Database
from tests.e2e.deployment import (
    MAIN_PORTS,
    RunningWorker,
    database_of,
    empty_streams,
    prepare_worker,
    started,
)
from tests.e2e.faults import FaultInjector
from tests.partner_api import PartnerApi, PartnerState
from tests.support import MONGODB_URI, unique_database


def reporters_of(item: pytest.Item) -> list[RunningWorker | FaultInjector]:
    """The deployments and fault injectors a test was given, alone or in a fixture's tuple."""
    values = list(getattr(item, "funcargs", {}).values())
    found: list[RunningWorker | FaultInjector] = []
    for value in values:
        for candidate in value if isinstance(value, tuple) else (value,):
            if isinstance(candidate, RunningWorker | FaultInjector) and candidate not in found:
                found.append(candidate)
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report carries its deployments' logs: a failure on a CI machine is
    read from its output alone."""
    report = yield
    if report.failed and call.when == "call":
        for reporter in reporters_of(item):
            report.sections.append((type(reporter).__name__, reporter.failure_report()))
    return report


@pytest.fixture(scope="session", autouse=True)
def empty_test_streams() -> None:
    empty_streams()


@pytest.fixture(scope="session")
def partner() -> Iterator[PartnerApi]:
    api = PartnerApi(PartnerState(fail_every=4))
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def worker(
    tmp_path_factory: pytest.TempPathFactory, partner: PartnerApi
) -> Iterator[RunningWorker]:
    deployment = prepare_worker(
        tmp_path_factory.mktemp("e2e"),
        app_id="worker",
        ports=MAIN_PORTS,
        database=unique_database("aevatar_e2e"),
        env={"DataSync__BaseUrl": partner.url, "DataSync__PageSize": "25"},
    )
    with started(deployment) as running:
        yield running


@pytest.fixture(scope="session")
async def mongo() -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def e2e_db(
    worker: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(worker, mongo) as db:
        yield db
