"""schemathesis against the operator API's own OpenAPI schema: over a thousand generated
requests (Hypothesis, 100 per operation), to a real uvicorn process of the app on the real
MongoDB-wire server. No 5xx, and every response is one the schema documents, in its shape."""

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok
from schemathesis.openapi import from_url

from tests.support import (
    MONGODB_URI,
    eventually_sync,
    free_port,
    unique_database,
    uri_with_database,
)

ROOT = Path(__file__).resolve().parents[2]
CASES_PER_OPERATION = 100


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """The app under uvicorn, without a sidecar (the sidecar's own calls fail as they would)."""
    port = free_port()
    database = unique_database("aevatar_fuzz")
    env = {
        **os.environ,
        "ConnectionStrings__Default": uri_with_database(MONGODB_URI, database),
        "Dapr__HttpPort": "1",
        "Dapr__HostActors": "false",
        "App__Environment": "Development",
        "Worker__Modules": '["tests.workers"]',
        "Serilog__MinimumLevel__Default": "Error",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, "the app exited"
        try:
            return bool(httpx.get(f"{url}/healthz", timeout=1).json()["phase"] == "started")
        except httpx.TransportError:
            return False

    try:
        eventually_sync(up, within=30, what="the app to serve")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        subprocess.run([sys.executable, "-c", _DROP, MONGODB_URI, database], check=True, timeout=60)


_DROP = "import sys, pymongo; pymongo.MongoClient(sys.argv[1]).drop_database(sys.argv[2])"


@pytest.fixture(scope="module")
def operator_api(served: str) -> schemathesis.BaseSchema:
    return from_url(f"{served}/openapi.json").include(path_regex="^/api/")


def test_the_operator_api_answers_every_generated_request_as_its_schema_says(
    operator_api: schemathesis.BaseSchema,
) -> None:
    cases: Counter[str] = Counter()
    for result in operator_api.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an invalid operation: {result.err()}"
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def answers_as_documented(case: schemathesis.Case[Any]) -> None:
            cases[case.operation.label] += 1
            case.call_and_validate(
                checks=[
                    checks.not_a_server_error,
                    checks.status_code_conformance,
                    checks.content_type_conformance,
                    checks.response_schema_conformance,
                ],
                timeout=30,
            )

        answers_as_documented()

    assert len(cases) >= 11, sorted(cases)
    assert sum(cases.values()) >= 1_000, cases
