"""A no-op consumer of a streaming subscription (`SubscribeTopicEventsAlpha1`): the app dials
daprd's gRPC port and acknowledges each event SUCCESS at once, over one bidirectional stream."""

import asyncio
import os
import sys

import grpc
from dapr.proto import api_service_v1, api_v1, appcallback_v1

_SUCCESS = appcallback_v1.TopicEventResponse(status=appcallback_v1.TopicEventResponse.SUCCESS)


async def consume(grpc_port: int, topic: str) -> None:
    answers: asyncio.Queue[api_v1.SubscribeTopicEventsRequestAlpha1] = asyncio.Queue()
    initial = api_v1.SubscribeTopicEventsRequestInitialAlpha1(pubsub_name="pubsub", topic=topic)
    await answers.put(api_v1.SubscribeTopicEventsRequestAlpha1(initial_request=initial))

    async def requests() -> object:
        while True:
            yield await answers.get()

    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = api_service_v1.DaprStub(channel)
        stream = stub.SubscribeTopicEventsAlpha1(requests())
        async for response in stream:
            if not response.HasField("event_message"):
                continue
            processed = api_v1.SubscribeTopicEventsRequestProcessedAlpha1(
                id=response.event_message.id, status=_SUCCESS
            )
            answers.put_nowait(api_v1.SubscribeTopicEventsRequestAlpha1(event_processed=processed))


if __name__ == "__main__":
    asyncio.run(consume(int(sys.argv[1]), os.environ.get("BENCH_TOPIC", "bench-transport-stream")))
