"""Backfill through the operator API, against the real MongoDB-wire server: a dry run lists a
range's ticks and which lack a run; the backfill makes a run for each of those, once (asked
again, it makes none; a tick with a live run keeps it alone); refusals say why."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.db.mongo import Database


def window(seconds: int) -> dict[str, str]:
    """The last `seconds` of the one-second cron's ticks, ending a second ago."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return {"from": (end - timedelta(seconds=seconds - 1)).isoformat(), "to": end.isoformat()}


async def backfill(client: httpx.AsyncClient, job: str, **params: Any) -> httpx.Response:
    return await client.post(f"/api/jobs/{job}/backfill", params=params)


async def test_a_dry_run_lists_the_ticks_then_the_backfill_makes_each_missing_one_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    live = await client.post("/scale-tick-cron")  # one tick of the range has a run already
    assert live.status_code == 200, live.text
    live_tick = (await db["job_runs"].find_one({"job": "scale_tick"}) or {})["trigger"]["tick"]
    end = live_tick.astimezone(UTC)
    span = {"from": (end - timedelta(seconds=9)).isoformat(), "to": end.isoformat()}

    dry = await backfill(client, "scale_tick", **span)
    done = await backfill(client, "scale_tick", **span, dry_run="false")
    again = await backfill(client, "scale_tick", **span, dry_run="false")

    assert dry.status_code == 200, dry.text
    assert dry.json()["ticks"] == 10
    assert dry.json()["had_runs"] == 1
    assert len(dry.json()["missing"]) == 9
    assert dry.json()["made"] == []
    assert len(done.json()["made"]) == 9
    assert again.json()["made"] == [], "a backfill asked twice makes no second run"
    ticks = await db["job_runs"].distinct("trigger.tick", {"job": "scale_tick"})
    assert len(ticks) == await db["job_runs"].count_documents({"job": "scale_tick"}) == 10
    backfilled = await db["job_runs"].count_documents(
        {"job": "scale_tick", "trigger.backfilled": True}
    )
    assert backfilled == 9
    audited = await db["audit_log"].find_one({"action": "backfill", "target": "scale_tick"})
    assert audited is not None
    assert sorted(audited["run_ids"]) == sorted(done.json()["made"])
    assert await db["audit_log"].count_documents({"action": "backfill"}) == 2, "dry runs: none"


async def test_a_backfill_that_cannot_be_done_is_refused_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    no_schedule = await backfill(client, "flaky_job", **window(5))
    backwards = await backfill(
        client, "scale_tick", **{"from": window(5)["to"], "to": window(5)["from"]}
    )
    too_many = await backfill(client, "scale_tick", **window(5_000))
    unknown = await backfill(client, "no_such_job", **window(5))

    assert no_schedule.status_code == 422
    assert "has no schedule" in no_schedule.json()["detail"]
    assert backwards.status_code == 422
    assert "is after to" in backwards.json()["detail"]
    assert too_many.status_code == 422
    assert "backfill it in parts" in too_many.json()["detail"]
    assert unknown.status_code == 404
