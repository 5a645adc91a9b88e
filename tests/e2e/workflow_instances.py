"""A workflow instance as the sidecar's workflow API tells it (the tests' view of Dapr's side)."""

import httpx

from tests.e2e.deployment import RunningWorker
from tests.support import eventually


async def instance_status(worker: RunningWorker, run_id: str) -> str | None:
    """The workflow instance's status as the sidecar's workflow API tells it."""
    async with httpx.AsyncClient(base_url=worker.sidecar_url, timeout=10) as sidecar:
        response = await sidecar.get(f"/v1.0/workflows/dapr/{run_id}")
    if response.status_code != 200:
        return None
    status: str = response.json().get("runtimeStatus", "")
    return status


async def instance_reaching(worker: RunningWorker, run_id: str, status: str) -> None:
    async def reached() -> bool | None:
        return await instance_status(worker, run_id) == status or None

    await eventually(reached, within=60, what=f"workflow instance {run_id} {status}")
