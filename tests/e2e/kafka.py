"""The stack's Kafka broker (PUBSUB=kafka), through Kafka's own admin tools (the jars
stack/fetch-kafka.sh fetched): what the e2e suite needs of it."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"


def _tool(main_class: str, *args: str) -> str:
    libs = subprocess.run(
        [str(ROOT / "stack" / "fetch-kafka.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    done = subprocess.run(
        ["java", "-Xmx256m", "-cp", f"{libs}/*", main_class, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


def partitions(topics: list[str]) -> dict[str, int]:
    """How many partitions each of these topics has; a topic the broker does not have is left
    out."""
    described = _tool(
        "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", BOOTSTRAP, "--describe"
    )
    counts: dict[str, int] = {}
    for line in described.splitlines():
        fields = dict(part.split(": ", 1) for part in line.strip().split("\t") if ": " in part)
        if fields.get("Topic") in topics and "PartitionCount" in fields:
            counts[fields["Topic"]] = int(fields["PartitionCount"])
    return counts


def truncate(topics: list[str]) -> None:
    """Deletes every message the topics hold (their partitions' logs up to their ends), as
    deleting a Redis stream does: a consumer group new to a topic, which starts at the oldest
    message kept, is not handed what an earlier deployment published."""
    counts = partitions(topics)
    if not counts:
        return
    plan = {
        "version": 1,
        "partitions": [
            {"topic": topic, "partition": n, "offset": -1}
            for topic, count in counts.items()
            for n in range(count)
        ],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(plan, file)
        file.flush()
        _tool(
            "org.apache.kafka.tools.DeleteRecordsCommand",
            "--bootstrap-server",
            BOOTSTRAP,
            "--offset-json-file",
            file.name,
        )


def where(topic: str, texts: list[str]) -> list[str]:
    """Where each message of the topic holding one of `texts` sits (`partition/offset`), read
    from the oldest kept: for a missing event, whether it reached the broker at all."""
    read = _tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        BOOTSTRAP,
        "--topic",
        topic,
        "--from-beginning",
        "--timeout-ms",
        "15000",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
    )
    found = []
    for line in read.splitlines():
        for text in texts:
            if text in line:
                place = " ".join(line.split("\t")[:2])
                found.append(f"{text} at {place}")
    return found


def committed(group: str) -> str:
    """The consumer group's committed offsets and log ends, per partition, as Kafka prints them
    (a committed offset past a missing event's: acknowledged without being applied)."""
    return _tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server",
        BOOTSTRAP,
        "--describe",
        "--group",
        group,
    )
