"""Waiting for every item of a run to be stored without loading the database server the
benchmark measures: a point lookup of the last item published (items are applied about in
order) until it is there, then the collection's count until it is complete. SecantusDB counts by
scanning, so counting from the start would cost the server a scan every poll."""

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from tests.support import eventually


async def all_stored(
    items: AsyncCollection[dict[str, Any]], *, last_id: str, expected: int
) -> None:
    async def last_stored() -> bool:
        return await items.find_one({"_id": last_id}, {"_id": 1}) is not None

    async def complete() -> bool:
        return await items.estimated_document_count() >= expected

    await eventually(last_stored, within=900, interval=0.05, what="the last item stored")
    await eventually(complete, within=900, interval=0.25, what="every item stored")
