"""Dashboard page load times with a large run history.

    make bench-dashboard   (or: .venv/bin/python -m bench.dashboard_pages --runs 100000)

A MongoDB-wire server of its own (SecantusDB, freshly started on a spare port, in a temporary
directory) is seeded with `--runs` run documents (a mix of jobs, statuses, triggers and
errors, spread over the last day) plus a day of run statistics; the app runs as a uvicorn
process against it, without a sidecar. Each page is fetched `--samples` times in turn over
HTTP, and its server time (request sent to last byte read) is reported as p50, p95 and max.
Written to bench/results/<date>-dashboard.json.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient

from app.repositories.runs import INDEXES
from bench.database_server import PYTHON_SERVER, database_server
from tests.support import eventually_sync

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
DB_PORT, APP_PORT = 27117, 18700
DATABASE = "Aevatar"
JOBS = [
    ("record_domain_event", "event"),
    ("MessageQueueProcessor", "queue"),
    ("ScheduledReportWorker", "scheduled"),
    ("DataSyncWorker", "integration"),
    ("recompute_customer_summaries", "data"),
    ("heartbeat", "scheduled"),
]
STATUSES = ["succeeded"] * 90 + ["dead"] * 4 + ["failed"] * 2 + ["cancelled"] * 2 + ["pending"] * 2
ERRORS = [
    ("RuntimeError", "partner answered 503 for order {n}"),
    ("KeyError", "'customer-{n}'"),
    ("TimedOut", "the attempt ran longer than its timeout of 300 s"),
]


def run_document(n: int, runs: int, now: datetime) -> dict[str, Any]:
    """Run n of `runs`, created at its share of the last day."""
    job, kind = JOBS[n % len(JOBS)]
    status = random.choice(STATUSES)
    created = now - timedelta(seconds=86_400 * (1 - n / runs))
    error = None
    if status in ("dead", "failed"):
        error_type, message = random.choice(ERRORS)
        error = {"type": error_type, "message": message.format(n=n), "traceback": "Traceback…"}
    trigger: dict[str, Any] = {"type": "event", "event_id": f"evt-{n}", "topic": "domain-events"}
    if kind in ("scheduled", "data"):
        trigger = {"type": "cron", "tick": created.replace(microsecond=0)}
    return {
        # An id of its creation time, as the service's own ids are.
        "_id": ObjectId(ObjectId.from_datetime(created).binary[:4] + os.urandom(8)),
        "job": job,
        "kind": kind,
        "status": status,
        "trigger": trigger,
        "attempt": 1,
        "max_attempts": 3,
        "created_at": created,
        "started_at": created,
        "finished_at": created + timedelta(milliseconds=12) if status != "pending" else None,
        "duration_ms": 12.0,
        "instance": "bench-1",
        "payload": {"order_id": f"order-{n}", "amount": n % 1000},
        "result": {"ok": True} if status == "succeeded" else None,
        "error": error,
        "attempts": [],
        "next_attempt_at": created if status in ("pending", "failed") else None,
        "requeued_as": None,
        "refusals": [],
        "sequence_key": None,
    }


async def seed(runs: int) -> float:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{DB_PORT}/?retryWrites=false", tz_aware=True
    )
    db = client[DATABASE]
    await db["job_runs"].create_indexes(INDEXES)
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for n in range(runs):
        batch.append(run_document(n, runs, now))
        if len(batch) == 2_000:
            await db["job_runs"].insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db["job_runs"].insert_many(batch, ordered=False)
    stats = []
    for job, kind in JOBS:
        for hours in range(24):
            start = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
            stats.append(
                _stats(f"hour|{start.isoformat()}|{job}", "hour", start, job, kind, scale=60)
            )
        for minutes in range(60):
            start = (now - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
            stats.append(
                _stats(f"minute|{start.isoformat()}|{job}", "minute", start, job, kind, scale=1)
            )
    await db["run_stats"].insert_many(stats)
    await client.close()
    return time.perf_counter() - started


def _stats(
    key: str, period: str, start: datetime, job: str, kind: str, *, scale: int
) -> dict[str, Any]:
    return {
        "_id": key,
        "period": period,
        "start": start,
        "job": job,
        "kind": kind,
        "statuses": {"succeeded": 60 * scale, "dead": 2 * scale, "failed": scale},
        "duration": {"3": 40 * scale, "4": 20 * scale, "6": 3 * scale},
        "wait": {"1": 50 * scale, "2": 13 * scale},
    }


def pages() -> list[str]:
    return [
        "/dashboard",
        "/dashboard?window=day",
        "/dashboard/runs",
        "/dashboard/runs?job=MessageQueueProcessor&status=dead",
        "/dashboard/runs?status=failed",
        "/dashboard/runs?kind=event",
        "/dashboard/runs?text=order-99",
        "/dashboard/failures",
        "/dashboard/schedules",
        "/dashboard/jobs",
        "/dashboard/audit",
    ]


def measure(samples: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{APP_PORT}", timeout=60) as http:
        for page in pages():
            http.get(page).raise_for_status()  # warm
            times = []
            for _ in range(samples):
                started = time.perf_counter()
                response = http.get(page)
                response.raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            cut = quantiles(times, n=20)
            figures[page] = {"p50_ms": cut[9], "p95_ms": cut[18], "max_ms": max(times)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    with database_server(PYTHON_SERVER, DB_PORT):
        app: subprocess.Popen[bytes] | None = None
        try:
            seeded_s = asyncio.run(seed(args.runs))
            sys.stderr.write(f"[bench] seeded {args.runs} runs in {seeded_s:.1f} s\n")
            env = {
                **os.environ,
                "ConnectionStrings__Default": (
                    f"mongodb://127.0.0.1:{DB_PORT}/{DATABASE}?retryWrites=false"
                ),
                "App__Environment": "Development",
                "Dapr__HostActors": "false",
                "Dapr__HttpPort": "1",
                "Serilog__MinimumLevel__Default": "Warning",
            }
            app = subprocess.Popen(
                [str(ROOT / ".venv/bin/uvicorn"), "app.main:create_app", "--factory",
                 "--host", "127.0.0.1", "--port", str(APP_PORT), "--no-access-log"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            eventually_sync(_healthy, within=60, what="the app")
            figures = measure(args.samples)
        finally:
            if app is not None:
                app.terminate()
                app.wait(timeout=30)
    lines = [f"{'page':<58} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"]
    for page, f in figures.items():
        lines.append(f"{page:<58} {f['p50_ms']:>8.1f} {f['p95_ms']:>8.1f} {f['max_ms']:>8.1f}")
    sys.stdout.write("\n".join(lines) + "\n")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{date.today().isoformat()}-dashboard.json"
    out.write_text(
        json.dumps(
            {"runs": args.runs, "samples": args.samples, "seeded_s": seeded_s, "pages": figures},
            indent=2,
        )
    )
    sys.stdout.write(f"written: {out.relative_to(ROOT)} (a freshly started database server)\n")


def _healthy() -> bool:
    try:
        answer = httpx.get(f"http://127.0.0.1:{APP_PORT}/healthz", timeout=1)
        return bool(answer.json()["phase"] == "started")
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    main()
