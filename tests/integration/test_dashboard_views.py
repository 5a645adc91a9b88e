"""The dashboard's machine-read parts in-process against the real database: the CSV export of
a filtered view, the live streams of a run and of the counts, and the pages' answers to bad
or missing input."""

import csv
import io
import json

import httpx

from tests.support import run_reaching, trigger


async def test_the_csv_export_holds_the_filtered_view(client: httpx.AsyncClient) -> None:
    dead = [await trigger(client, "doomed_job") for _ in range(3)]
    ok = await trigger(client, "flaky_job", {"key": "csv"})
    for run_id in dead:
        await run_reaching(client, run_id, {"dead"})
    await run_reaching(client, ok, {"succeeded"})

    response = await client.get("/dashboard/runs.csv", params={"status": "dead"})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(row["id"] for row in rows) == sorted(dead)
    assert {row["error_type"] for row in rows} == {"GiveUp"}
    assert {row["trigger"] for row in rows} == {"manual"}


async def test_a_runs_live_stream_ends_when_the_run_has(client: httpx.AsyncClient) -> None:
    run_id = await trigger(client, "chunked_job", {"chunks": 3, "chunk_ms": 100})
    events = []
    async with client.stream("GET", f"/dashboard/runs/{run_id}/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert events[-1]["status"] == "succeeded"
    assert events[-1]["percent"] == 100.0
    assert events[-1]["finished"] is True
    assert len(events) >= 2, "it streamed while the run ran"
    percents = [e["percent"] for e in events if e["percent"] is not None]
    assert percents == sorted(percents)


async def test_bad_filters_are_named_and_dropped(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard/runs", params={"status": "lost", "since": "yesterday"})
    assert page.status_code == 200
    assert "ignored invalid filter: since, status" in page.text
    missing = await client.get("/dashboard/runs/6b0f3a81338fee73be9f306b")
    assert missing.status_code == 404
    counts = (await client.get("/dashboard/counts.json")).json()
    assert set(counts) == {"pending", "running", "failed", "dead"}
