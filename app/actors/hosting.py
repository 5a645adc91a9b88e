"""Registers the actor types this app hosts with the Dapr actor runtime (in the lifespan)."""

import asyncio
from datetime import timedelta

from dapr.actor import ActorId
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.actor.runtime.runtime import ActorRuntime
from dapr.clients.http.dapr_actor_http_client import DaprActorHttpClient
from dapr.conf import settings as dapr_settings
from dapr.ext.fastapi import DaprActor
from dapr.serializers import DefaultJSONSerializer

from app.actors.flow_gate import FlowGate
from app.actors.key_sequencer import KeySequencer, RunHere
from app.actors.late_client import LateActorClient
from app.actors.run_lease import RunLease
from app.actors.tick_coordinator import TickCoordinator
from app.core.config import Settings


def configure_actor_runtime(settings: Settings) -> None:
    # The SDK's actor runtime reaches the sidecar (actor state) through its own settings.
    dapr_settings.DAPR_RUNTIME_HOST = settings.dapr.host  # type: ignore[attr-defined]
    dapr_settings.DAPR_HTTP_PORT = settings.dapr.http_port  # type: ignore[attr-defined]
    dapr_settings.DAPR_API_TOKEN = settings.dapr.api_token  # type: ignore[attr-defined]
    ActorRuntime.set_actor_config(
        ActorRuntimeConfig(
            actor_idle_timeout=timedelta(minutes=10),
            actor_scan_interval=timedelta(seconds=30),
            # An instance that stops hands its actors over once their current call ends.
            # Below placement's dissemination timeout (30 s), or daprd clamps it.
            drain_ongoing_call_timeout=timedelta(seconds=20),
            drain_rebalanced_actors=True,
        )
    )


async def register_actors(
    dapr_actor: DaprActor, *, run_here: RunHere, client: LateActorClient
) -> None:
    """Must finish before the app listens: daprd reads the actor types from /dapr/config once,
    when it first reaches the app. Waits for nothing: `client` gets the real actor client
    once the sidecar answers (`connect_actor_client`)."""

    def sequencer(ctx: ActorRuntimeContext, actor_id: ActorId) -> KeySequencer:
        return KeySequencer(ctx, actor_id, run_here=run_here)

    await dapr_actor.register_actor(TickCoordinator, actor_client=client)
    await dapr_actor.register_actor(RunLease, actor_client=client)
    await dapr_actor.register_actor(FlowGate, actor_client=client)
    await dapr_actor.register_actor(KeySequencer, actor_factory=sequencer, actor_client=client)


async def connect_actor_client(client: LateActorClient) -> None:
    """The SDK's actor client, for a sidecar that already answers (its constructor checks once
    and returns; off the loop all the same, as it sleeps while the sidecar does not)."""
    client.ready(await asyncio.to_thread(DaprActorHttpClient, DefaultJSONSerializer()))
