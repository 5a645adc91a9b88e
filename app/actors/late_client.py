"""The actor client the actor types are registered with before the sidecar answers.

daprd reads the app's actor types from `/dapr/config` once, when it first reaches the app, so
they must be registered before the app listens; the SDK's own client waits for the sidecar in
its constructor (sleeping in a loop that SIGTERM cannot stop), which would keep the app from
serving its probes until the sidecar is up. This one takes the real client once start-up has
it; an actor call that comes before then waits for it."""

import asyncio

from dapr.clients.base import DaprActorClientBase


class LateActorClient(DaprActorClientBase):
    def __init__(self) -> None:
        self._client: DaprActorClientBase | None = None
        self._ready = asyncio.Event()

    def ready(self, client: DaprActorClientBase) -> None:
        self._client = client
        self._ready.set()

    async def _real(self) -> DaprActorClientBase:
        await self._ready.wait()
        assert self._client is not None
        return self._client

    async def invoke_method(
        self, actor_type: str, actor_id: str, method: str, data: bytes | None = None
    ) -> bytes:
        return await (await self._real()).invoke_method(actor_type, actor_id, method, data)

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        await (await self._real()).save_state_transactionally(actor_type, actor_id, data)

    async def get_state(self, actor_type: str, actor_id: str, name: str) -> bytes:
        return await (await self._real()).get_state(actor_type, actor_id, name)

    async def register_reminder(
        self, actor_type: str, actor_id: str, name: str, data: bytes
    ) -> None:
        await (await self._real()).register_reminder(actor_type, actor_id, name, data)

    async def unregister_reminder(self, actor_type: str, actor_id: str, name: str) -> None:
        await (await self._real()).unregister_reminder(actor_type, actor_id, name)

    async def register_timer(self, actor_type: str, actor_id: str, name: str, data: bytes) -> None:
        await (await self._real()).register_timer(actor_type, actor_id, name, data)

    async def unregister_timer(self, actor_type: str, actor_id: str, name: str) -> None:
        await (await self._real()).unregister_timer(actor_type, actor_id, name)
