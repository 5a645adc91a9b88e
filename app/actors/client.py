"""Calls to actors, through this instance's sidecar (`/v1.0/actors/<type>/<id>/method/<name>`).

Every call can fail (the sidecar restarting, placement rebalancing); callers fall back on
MongoDB's unique indexes and conditional writes, and say so in the run history.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from app.actors.interfaces import FLOW_GATE, KEY_SEQUENCER, RUN_LEASE, TICK_COORDINATOR
from app.core.errors import AevatarError
from app.workers.flow_control import FlowLimits


class ActorUnavailable(AevatarError):
    """The actor could not be reached or failed; the message says how."""


@dataclass(frozen=True)
class GateAnswer:
    granted: bool
    reason: str
    retry_after_seconds: float


class ActorClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def _call(
        self,
        actor_type: str,
        actor_id: str,
        method: str,
        body: dict[str, Any],
        *,
        wait_seconds: float,
    ) -> dict[str, Any]:
        url = f"/v1.0/actors/{actor_type}/{quote(actor_id, safe='')}/method/{method}"
        try:
            response = await self._http.post(url, json=body, timeout=wait_seconds)
        except httpx.HTTPError as exc:
            raise ActorUnavailable(f"{actor_type}/{actor_id}.{method}: {exc!r}") from exc
        if response.is_error:
            raise ActorUnavailable(
                f"{actor_type}/{actor_id}.{method}: {response.status_code} {response.text[:300]}"
            )
        result: dict[str, Any] = response.json()
        return result

    async def claim_tick(self, *, job: str, tick: datetime, instance: str) -> tuple[bool, str]:
        result = await self._call(
            TICK_COORDINATOR,
            job,
            "Claim",
            {"tick": tick.isoformat(), "instance": instance},
            wait_seconds=5,
        )
        return bool(result["granted"]), str(result["holder"])

    async def keep_missed(self, *, key: str, entry: str) -> int:
        """Keeps what could not be stored (a job's tick; a Jobs API firing) in the tick
        coordinator of `key`; how many it keeps now."""
        result = await self._call(TICK_COORDINATOR, key, "Keep", {"tick": entry}, wait_seconds=5)
        return int(result["kept"])

    async def missed(self, *, key: str) -> list[str]:
        result = await self._call(TICK_COORDINATOR, key, "Missed", {}, wait_seconds=5)
        return [str(entry) for entry in result["ticks"]]

    async def forget_missed(self, *, key: str, entries: list[str]) -> None:
        await self._call(TICK_COORDINATOR, key, "Forget", {"ticks": entries}, wait_seconds=5)

    async def acquire_lease(
        self, *, run_id: str, instance: str, ttl_seconds: float, wait_seconds: float
    ) -> tuple[bool, str, str]:
        result = await self._call(
            RUN_LEASE,
            run_id,
            "Acquire",
            {"instance": instance, "ttl_seconds": ttl_seconds},
            wait_seconds=wait_seconds,
        )
        return bool(result["granted"]), str(result["holder"]), str(result["expires_at"])

    async def release_lease(self, *, run_id: str, instance: str, wait_seconds: float) -> None:
        await self._call(
            RUN_LEASE, run_id, "Release", {"instance": instance}, wait_seconds=wait_seconds
        )

    async def run_in_sequence(self, *, job: str, key: str, run_id: str, wait_seconds: float) -> str:
        result = await self._call(
            KEY_SEQUENCER, f"{job}|{key}", "Run", {"run_id": run_id}, wait_seconds=wait_seconds
        )
        return str(result["status"])

    async def pass_gate(
        self,
        *,
        gate: str,
        limits: FlowLimits,
        ttl_seconds: float,
        enter: list[str],
        renew: list[str],
        leave: list[str],
    ) -> dict[str, GateAnswer]:
        """What this instance asks of a gate at once; the answer for each run that entered."""
        rate = limits.rate
        result = await self._call(
            FLOW_GATE,
            gate,
            "Pass",
            {
                "enter": enter,
                "renew": renew,
                "leave": leave,
                "max_running": limits.max_running,
                "rate_count": rate.count if rate else None,
                "rate_period_seconds": rate.period_seconds if rate else 0,
                "ttl_seconds": ttl_seconds,
            },
            wait_seconds=5,
        )
        return {
            run_id: GateAnswer(
                bool(answer["granted"]),
                str(answer["reason"]),
                float(answer["retry_after_seconds"]),
            )
            for run_id, answer in dict(result["entered"]).items()
        }
