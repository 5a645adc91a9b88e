"""Attempts that died with their process, against the real database: an app that starts again
stores each delivery its journal says was begun and never ended as a run whose attempt died
(`InstanceDied`), retried as its job says; dead (`PoisonMessage`) once its attempts are spent;
and nothing changes for an occurrence that ran to its end elsewhere meanwhile."""

import uuid
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId

from app.core.clock import utc_now
from app.core.config import Settings
from app.db.mongo import Database
from app.dispatch.delivery_journal import DeliveryJournal, JournalEntry
from tests.integration.conftest import serve
from tests.integration.test_events import cloud_event
from tests.support import run_reaching
from tests.workers import FLAKY_TOPIC

INSTANCE_ID = "journal-test-instance"


def with_journal(settings: Settings, directory: Path) -> Settings:
    return settings.model_copy(
        update={
            "app": settings.app.model_copy(update={"instance_id": INSTANCE_ID}),
            "worker": settings.worker.model_copy(update={"journal_dir": str(directory)}),
        }
    )


def left_by_a_dead_process(
    directory: Path, database: str, job: str, payload: dict[str, Any]
) -> JournalEntry:
    """A journal as a process leaves it that died running one delivery (and ended another)."""
    journal = DeliveryJournal.at(str(directory), database=database, instance_id=INSTANCE_ID)
    journal.open()
    entries = [
        JournalEntry(
            run_id=str(ObjectId()),
            job=job,
            event_id=str(uuid.uuid4()),
            topic=FLAKY_TOPIC,
            payload=payload,
            begun_at=utc_now().isoformat(),
            instance=f"{INSTANCE_ID}-4242",
        )
        for _ in range(2)
    ]
    for entry in entries:
        journal.begun(entry)
    journal.ended(entries[1].run_id)
    journal.close()
    return entries[0]


async def test_a_delivery_its_process_died_in_is_stored_as_a_died_attempt_and_retried(
    settings: Settings, db: Database, database_name: str, tmp_path: Path
) -> None:
    payload = {"key": f"died-{uuid.uuid4().hex[:6]}", "fail_times": 0, "sleep_ms": 0}
    died = left_by_a_dead_process(tmp_path, database_name, "flaky_event_handler", payload)

    journal = tmp_path / database_name / f"{INSTANCE_ID}.journal"
    async with serve(with_journal(settings, tmp_path)) as client:
        assert journal.read_text() == "", "the journal starts afresh once it is recorded"
        run = await run_reaching(client, died.run_id, {"succeeded", "dead"}, within=20)
        # Its redelivery finds the run: acknowledged, not run again.
        event = cloud_event(payload, event_id=died.event_id)
        answer = await client.post(f"/events/pubsub/{FLAKY_TOPIC}", json=event)
        assert answer.json() == {"status": "SUCCESS"}

    assert run["status"] == "succeeded"
    first, second = run["attempts"]
    assert first["error"]["type"] == "InstanceDied"
    assert first["instance"] == f"{INSTANCE_ID}-4242"
    assert second["status"] == "succeeded"
    assert run["trigger"]["event_id"] == died.event_id
    assert await db["job_runs"].count_documents({}) == 1, "the ended delivery made no run"
    assert not journal.exists(), "a graceful stop with nothing in flight leaves no journal"


async def test_a_delivery_whose_every_attempt_died_is_dead_as_a_poison_message(
    settings: Settings, db: Database, database_name: str, tmp_path: Path
) -> None:
    died = left_by_a_dead_process(tmp_path, database_name, "single_file_queue", {"key": "p"})
    # `greeting_job` has one attempt: the one that died spends it.
    died_again = left_by_a_dead_process(tmp_path / "other", database_name, "greeting_job", {})

    async with serve(with_journal(settings, tmp_path)) as client:
        run = await run_reaching(client, died.run_id, {"failed"}, within=10)
    assert run["attempts"][0]["error"]["type"] == "InstanceDied"

    # The same event dies with a second process (max_attempts=2): its attempts are spent.
    journal = DeliveryJournal.at(str(tmp_path), database=database_name, instance_id=INSTANCE_ID)
    journal.open()
    journal.begun(died)
    journal.close()
    await db["job_runs"].update_one(
        {"_id": ObjectId(died.run_id)}, {"$set": {"next_attempt_at": utc_now().replace(year=2100)}}
    )
    async with serve(with_journal(settings, tmp_path)) as client:
        run = await run_reaching(client, died.run_id, {"dead"}, within=10)
    assert run["error"]["type"] == "PoisonMessage"
    assert "each of its 2 attempts ended with its instance gone" in run["error"]["message"]
    assert [a["error"]["type"] for a in run["attempts"]] == ["InstanceDied", "InstanceDied"]
    assert [a["attempt"] for a in run["attempts"]] == [1, 2]

    async with serve(with_journal(settings, tmp_path / "other")) as client:
        poisoned = await run_reaching(client, died_again.run_id, {"dead"}, within=10)
    assert poisoned["error"]["type"] == "PoisonMessage"


async def test_an_occurrence_that_ran_elsewhere_meanwhile_is_left_as_it_is(
    settings: Settings, client: httpx.AsyncClient, db: Database, database_name: str, tmp_path: Path
) -> None:
    payload = {"key": f"ran-{uuid.uuid4().hex[:6]}", "fail_times": 0, "sleep_ms": 0}
    died = left_by_a_dead_process(tmp_path, database_name, "flaky_event_handler", payload)
    event = cloud_event(payload, event_id=died.event_id)
    assert (await client.post(f"/events/pubsub/{FLAKY_TOPIC}", json=event)).json() == {
        "status": "SUCCESS"
    }

    async with serve(with_journal(settings, tmp_path)):  # started: the journal was read
        path = tmp_path / database_name / f"{INSTANCE_ID}.journal"
        assert path.read_text() == ""
        runs = [r async for r in db["job_runs"].find({"trigger.event_id": died.event_id})]
    assert len(runs) == 1
    assert runs[0]["status"] == "succeeded"
    assert len(runs[0]["attempts"]) == 1
