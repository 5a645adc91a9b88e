"""Workflows completed per second: a chain of three steps and a fan-out of ten, ours on Dapr
Workflow (one instance) and Celery's chain and chord of the same shapes, side by side in one run.

    make bench-workflows   (also the last part of `make bench`)

Ours: a fresh deployment (app id `worker-bench-flow`), N workflows triggered through the
operator API at once; the clock runs from the first trigger until every workflow run has
succeeded. Start latency between steps: a chain's step k+1 starting after step k ended (from
the steps' runs; for Celery, from the times its steps record). CPU per workflow from /proc.
Dapr's own published figure for comparison: about 98 workflows/s (Dapr 1.17 performance
report, Kubernetes). The figures are written to bench/results/<date>-workflows.json.
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.cpu import CpuMeter, database_pid
from bench.workers import FAN_OUT_WIDTH
from tests.e2e.deployment import Ports, _pids_listening, prepare_worker
from tests.support import MONGODB_URI, eventually, unique_database

PORTS = Ports(app=18550, http=13950, grpc=15551, metrics=19650)
RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"chain": ("bench_chain", 3), "fan-out": ("bench_fan_out", FAN_OUT_WIDTH)}

Db = AsyncDatabase[dict[str, Any]]


@dataclass(frozen=True)
class FlowResult:
    name: str
    shape: str
    workflows: int
    workflows_per_second: float
    steps_per_second: float
    step_start_ms: dict[str, float]
    """A chain's next step starting after the one before ended: p50 and p99 (chains only)."""
    cpu_ms_per_workflow: dict[str, float]

    @classmethod
    def of(
        cls,
        name: str,
        *,
        shape: str,
        workflows: int,
        elapsed: float,
        step_start_ms: dict[str, float],
        meter: CpuMeter,
    ) -> "FlowResult":
        width = SHAPES[shape][1]
        return cls(
            name,
            shape,
            workflows,
            workflows / elapsed,
            workflows * width / elapsed,
            step_start_ms,
            meter.ms_per_event(workflows),
        )


async def measure_ours(shape: str, workflows: int, tmp: Path) -> FlowResult:
    job = SHAPES[shape][0]
    deployment = prepare_worker(
        tmp,
        app_id="worker-bench-flow",
        ports=PORTS,
        database=unique_database("aevatar_bench_flow"),
        env={
            "Serilog__MinimumLevel__Default": "Warning",
            "Worker__LeaseSeconds": "15",
            "Worker__Modules": '["tests.workers", "bench.workers"]',
        },
    )
    deployment.namespace = f"bench-flow-{os.getpid()}-{shape}"  # instances of its own
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI, tz_aware=True)
    db = mongo[deployment.database]
    await asyncio.to_thread(deployment.start)
    try:
        meter = CpuMeter(
            {
                "app": _pids_listening(deployment.app_port(0)),
                "daprd": _pids_listening(deployment.ports.http),
                "database": [database_pid()],
            }
        )
        async with deployment.api() as api:
            await _trigger(api, job, "warm-up")
            await _succeeded(db, job, 1)
            meter.start()
            started = time.perf_counter()
            await asyncio.gather(*(_trigger(api, job, f"f{n}") for n in range(workflows)))
            await _succeeded(db, job, workflows + 1)
        elapsed = time.perf_counter() - started
        meter.stop()
        latency = await _our_step_starts(db, job) if shape == "chain" else {}
        name = "aevatar-worker (Dapr Workflow), 1 instance"
        return FlowResult.of(
            name,
            shape=shape,
            workflows=workflows,
            elapsed=elapsed,
            step_start_ms=latency,
            meter=meter,
        )
    finally:
        await asyncio.to_thread(deployment.stop)
        await mongo.drop_database(deployment.database)
        await mongo.close()


async def _trigger(api: Any, job: str, flow: str) -> None:
    response = await api.post(f"/api/jobs/{job}/trigger", json={"payload": {"flow": flow}})
    response.raise_for_status()


async def _succeeded(db: Db, job: str, count: int) -> None:
    async def done() -> bool:
        return await db["job_runs"].count_documents({"job": job, "status": "succeeded"}) >= count

    await eventually(done, within=900, interval=0.25, what=f"{count} {job} runs succeeded")


async def _our_step_starts(db: Db, job: str) -> dict[str, float]:
    parents = [r["_id"] async for r in db["job_runs"].find({"job": job}, {"_id": 1})]
    steps = db["job_runs"].find(
        {"parent_run_id": {"$in": [str(p) for p in parents]}},
        {"parent_run_id": 1, "step": 1, "started_at": 1, "finished_at": 1},
    )
    by_flow: dict[str, list[tuple[str, float, float]]] = {}
    async for s in steps:
        span = (s["step"], s["started_at"].timestamp(), s["finished_at"].timestamp())
        by_flow.setdefault(s["parent_run_id"], []).append(span)
    return _gaps(by_flow)


def _gaps(by_flow: dict[str, list[tuple[str, float, float]]]) -> dict[str, float]:
    gaps = []
    for spans in by_flow.values():
        ordered = sorted(spans)
        gaps += [(b[1] - a[2]) * 1000 for a, b in itertools.pairwise(ordered)]
    if len(gaps) < 2:
        return {}
    cuts = statistics.quantiles(gaps, n=100)
    return {"p50": round(statistics.median(gaps), 1), "p99": round(cuts[98], 1)}


async def measure_celery(shape: str, workflows: int) -> FlowResult:
    database = unique_database("bench_celery")
    env = {**os.environ, "BENCH_MONGODB_URI": MONGODB_URI, "BENCH_DATABASE": database}
    command = [sys.executable, "-m", "celery", "-A", "bench.peers.celery_app", "worker",
               "--pool", "threads", "--concurrency", "8", "--loglevel", "WARNING"]  # fmt: skip
    worker = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI)
    db = mongo[database]
    try:
        await asyncio.to_thread(_send_celery, shape, ["warm-up"], env)
        await _flows_done(db, 1)
        meter = CpuMeter({"celery": [worker.pid], "database": [database_pid()]})
        meter.start()
        started = time.perf_counter()
        await asyncio.to_thread(_send_celery, shape, [f"f{n}" for n in range(workflows)], env)
        await _flows_done(db, workflows + 1)
        elapsed = time.perf_counter() - started
        meter.stop()
        latency = await _celery_step_starts(db) if shape == "chain" else {}
        name = "Celery (chain / chord), threads x8"
        return FlowResult.of(
            name,
            shape=shape,
            workflows=workflows,
            elapsed=elapsed,
            step_start_ms=latency,
            meter=meter,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 60)
        await mongo.drop_database(database)
        await mongo.close()


def _send_celery(shape: str, flows: list[str], env: dict[str, str]) -> None:
    """Sends the canvases from a process of its own: the app reads its settings at import."""
    code = "import sys; from bench.peers.celery_flows import send; send(sys.argv[1], sys.argv[2:])"
    subprocess.run([sys.executable, "-c", code, shape, *flows], cwd=ROOT, env=env, check=True)


async def _flows_done(db: Db, count: int) -> None:
    async def done() -> bool:
        return await db["flows"].count_documents({}) >= count

    await eventually(done, within=900, interval=0.25, what=f"{count} Celery canvases done")


async def _celery_step_starts(db: Db) -> dict[str, float]:
    by_flow: dict[str, list[tuple[str, float, float]]] = {}
    async for s in db["steps"].find({}):
        by_flow.setdefault(s["flow"], []).append((str(s["n"]), s["began"], s["ended"]))
    return _gaps(by_flow)


def _row(result: FlowResult) -> str:
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in result.cpu_ms_per_workflow.items())
    latency = result.step_start_ms
    starts = f"{latency['p50']:.1f} / {latency['p99']:.1f}" if latency else "-"
    return (
        f"{result.name:44} {result.shape:8} {result.workflows:5} "
        f"{result.workflows_per_second:9.1f} {result.steps_per_second:9.1f} {starts:>15}  {cpu}"
    )


async def run(workflows: int) -> list[str]:
    results: list[FlowResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in SHAPES:
            results.append(await measure_ours(shape, workflows, Path(tmp)))
            results.append(await measure_celery(shape, workflows))
    lines = [
        f"workflows: {workflows} of each shape at once (chain: 3 steps in turn; fan-out: "
        f"{FAN_OUT_WIDTH} side by side), one insert per step; Dapr's published figure: ~98 "
        "workflows/s (1.17 performance report, Kubernetes)",
        f"{'':44} {'shape':8} {'count':>5} {'flows/s':>9} {'steps/s':>9} "
        f"{'next step ms':>15}  CPU ms per workflow",
        *(_row(r) for r in results),
    ]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{date.today().isoformat()}-workflows.json"
    out.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=100)
    args = parser.parse_args(argv)
    lines = asyncio.run(run(args.workflows))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
