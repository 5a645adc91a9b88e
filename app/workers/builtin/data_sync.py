"""DataSyncWorker: pulls what is new from an external HTTP API and upserts it.

The external API (its base URL is the setting DataSync:BaseUrl) serves a change feed:
`GET {base}/items?after=<seq>&limit=<n>` answers `{"items": [{"id": ..., "seq": ..., ...}]}`
in ascending `seq`. The position (the last `seq` stored) is saved after each page, so the next
run, or this one resumed after a crash, fetches only what it has not stored yet.
"""

from typing import Any

from pydantic import BaseModel, Field

from app.core.clock import utc_now
from app.repositories.synced_items import SyncedItemRepository
from app.workers import GiveUp, JobContext, registry

POSITION_KEY = "DataSyncWorker:items"


class ExternalItem(BaseModel):
    id: str | int
    seq: int = Field(ge=0)


@registry.section("DataSync")
class DataSyncSettings(BaseModel):
    """This worker's settings: appsettings.json `DataSync`, or `DataSync__BaseUrl` and the like."""

    base_url: str | None = Field(None, alias="BaseUrl")
    page_size: int = Field(100, alias="PageSize", ge=1)
    timeout_seconds: float = Field(10.0, alias="TimeoutSeconds", gt=0)


class SyncRequest(BaseModel):
    max_pages: int | None = Field(None, ge=1)
    """Stop after this many pages (None: until the feed is exhausted)."""


@registry.integration(payload=SyncRequest, name="DataSyncWorker", max_attempts=5)
async def sync_external_items(request: SyncRequest, ctx: JobContext) -> dict[str, Any]:
    """Fetches the items added or changed since the last sync and upserts them by id."""
    settings = ctx.section(DataSyncSettings)
    base_url, page_size = settings.base_url, settings.page_size
    if not base_url:
        raise GiveUp("DataSync:BaseUrl is not set: there is no external API to sync with")
    items = SyncedItemRepository(ctx.db)
    position = await ctx.positions.get(POSITION_KEY) or 0
    started_at = position
    fetched = created = pages = 0
    while request.max_pages is None or pages < request.max_pages:
        body = await ctx.http.get_json(
            f"{base_url.rstrip('/')}/items",
            params={"after": position, "limit": page_size},
            seconds_per_try=settings.timeout_seconds,
        )
        page = [ExternalItem.model_validate(item) for item in body["items"]]
        raw = body["items"]
        pages += 1
        if not page:
            break
        created += await items.upsert_many(raw, source=base_url, at=utc_now())
        fetched += len(page)
        position = max(item.seq for item in page)
        await ctx.positions.set(POSITION_KEY, position)
        await ctx.report_progress(done=fetched)
        if len(page) < page_size:
            break
    return {"fetched": fetched, "new": created, "pages": pages, "from": started_at, "to": position}
