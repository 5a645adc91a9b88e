"""RunLease: one instance at a time works on a data processor run; the lease passes to another
instance when its holder stops renewing it."""

from datetime import UTC, datetime, timedelta
from typing import Any

from dapr.actor import Actor

from app.actors.interfaces import RunLeaseInterface
from app.actors.state_values import as_moment

_LEASE = "lease"


class RunLease(Actor, RunLeaseInterface):
    async def acquire(self, request: dict[str, Any]) -> dict[str, Any]:
        instance = str(request["instance"])
        now = datetime.now(UTC)
        _, lease = await self._state_manager.try_get_state(_LEASE)
        if lease and lease["holder"] != instance and as_moment(lease["expires_at"]) > now:
            return {"granted": False, **lease}
        lease = {
            "holder": instance,
            "expires_at": (now + timedelta(seconds=float(request["ttl_seconds"]))).isoformat(),
        }
        await self._state_manager.set_state(_LEASE, lease)
        return {"granted": True, **lease}

    async def release(self, request: dict[str, Any]) -> dict[str, Any]:
        _, lease = await self._state_manager.try_get_state(_LEASE)
        if lease and lease["holder"] == str(request["instance"]):
            await self._state_manager.remove_state(_LEASE)
            return {"released": True}
        return {"released": False}
