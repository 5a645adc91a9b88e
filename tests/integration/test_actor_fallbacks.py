"""Without a sidecar every actor call fails: MongoDB's guards take over, and the run history
says so."""

import httpx

from app.db.mongo import Database
from tests.integration.test_events import cloud_event
from tests.support import eventually
from tests.workers import ORDERED_TOPIC


async def test_a_keyed_event_waits_behind_its_key_when_its_key_actor_is_unreachable(
    client: httpx.AsyncClient, db: Database
) -> None:
    event = cloud_event({"account": "acct-1", "seq": 1, "sleep_ms": 0})

    response = await client.post(f"/events/pubsub/{ORDERED_TOPIC}", json=event)

    assert response.json() == {"status": "SUCCESS"}
    run = await db["job_runs"].find_one({"trigger.event_id": event["id"]})
    assert run is not None
    assert run["sequence_key"] == "acct-1"
    # Never out of its key's order: it waits to be handed to the actor again.
    assert run["status"] == "pending"
    assert run["next_attempt_at"] > run["created_at"]
    assert "not run out of its key's order" in run["refusals"][0]["reason"]
    assert await db["test_ledgers"].find_one({"_id": "acct-1"}) is None


async def test_a_second_firing_of_a_tick_is_refused_by_the_index_and_noted(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = (await client.post("/scale-tick-cron")).json()
    second = (await client.post("/scale-tick-cron")).json()

    if second["run_id"] != first["run_id"]:  # the two firings fell on two ticks: try once more
        first = second
        second = (await client.post("/scale-tick-cron")).json()
    assert second == {
        "run_id": first["run_id"],
        "created": False,
        "claimed_by": None,
        "paused": False,
        "kept": False,
    }

    async def noted() -> list[dict[str, str]] | None:
        run = await db["job_runs"].find_one({"job": "scale_tick", "refusals": {"$ne": []}})
        return run["refusals"] if run else None

    refusals = await eventually(noted, what="the refusal on the run")
    assert "the tick coordinator was unavailable" in refusals[0]["reason"]
