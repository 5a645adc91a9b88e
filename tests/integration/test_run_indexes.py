"""The run collection's indexes: the ones the engine's queries need, and no more (each index is
paid by every write of every run)."""

from pymongo import ASCENDING

from app.core.config import Settings
from app.db.mongo import Database
from app.repositories.runs import COLLECTION, INDEXES
from tests.integration.conftest import serve


async def test_indexes_an_earlier_version_made_are_dropped_at_start_up(
    settings: Settings, db: Database
) -> None:
    runs = db[COLLECTION]
    await runs.create_index(
        [("status", ASCENDING), ("lease_until", ASCENDING)], name="expired_leases"
    )
    await runs.create_index(
        [("sequence_key", ASCENDING), ("status", ASCENDING)], name="key_sequences"
    )

    async with serve(settings) as client:
        assert (await client.get("/healthz")).status_code == 200

    names = {index["name"] async for index in await runs.list_indexes()}
    assert not names & {"expired_leases", "key_sequences"}
    assert names == {"_id_", *(index.document["name"] for index in INDEXES)}
