"""Flow-control options as a job declares them: rate limits parsed, options that cannot go
together refused at registration, and what a cron tick does under each overlap policy."""

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from app.dispatch.overlap import plan_tick
from app.models.runs import JobRun, RunStatus, RunTrigger
from app.workers import JobContext, Overlap
from app.workers.flow_control import FlowLimits, InvalidRateLimit, RateLimit
from app.workers.registry import Job, RegistrationError, Registry


class Tenanted(BaseModel):
    tenant: str
    account: str = ""


async def tick(ctx: JobContext) -> None:
    """A tick."""


async def handle(item: Tenanted, ctx: JobContext) -> None:
    """An item."""


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("100/min", 100, 60.0),
        ("5/s", 5, 1.0),
        ("1000/hour", 1000, 3600.0),
        ("10/30s", 10, 30.0),
        ("3 per day", 3, 86400.0),
        ("20/15 seconds", 20, 15.0),
    ],
)
def test_a_rate_limit_reads_as_written(text: str, count: int, period: float) -> None:
    assert RateLimit.parse(text) == RateLimit(count=count, period_seconds=period)


@pytest.mark.parametrize("text", ["100", "/min", "0/min", "5/fortnight", "5/0s", "lots/min"])
def test_a_rate_limit_that_says_nothing_clear_is_refused(text: str) -> None:
    with pytest.raises(InvalidRateLimit, match="rate_limit="):
        RateLimit.parse(text)


def test_the_limits_a_job_declares_are_its_gates() -> None:
    registry = Registry()
    registry.event_handler(
        topic="t", payload=Tenanted, name="keyed", concurrency_key="tenant", max_running=1
    )(handle)
    registry.scheduled(cron="@every 1s", name="buffered", overlap="buffer_one")(tick)
    registry.manual(name="rated", rate_limit="100/min")(tick)
    registry.manual(name="free")(tick)
    keyed, buffered, rated, free = (registry.get(n) for n in ("keyed", "buffered", "rated", "free"))
    assert keyed is not None
    assert buffered is not None
    assert rated is not None
    assert free is not None

    assert keyed.gate_of({"tenant": "acme"}) == "keyed|acme"
    assert keyed.limits == FlowLimits(max_running=1)
    assert buffered.limits == FlowLimits(max_running=1), "buffer_one runs one at a time"
    assert buffered.gate_of(None) == "buffered"
    assert rated.limits == FlowLimits(rate=RateLimit(100, 60.0))
    assert not free.gated


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_running": 0}, "max_running must be at least 1"),
        ({"rate_limit": "often"}, "is not `<count>/<period>`"),
        ({"concurrency_key": "nope", "max_running": 1}, "must name a field of its payload"),
        ({"concurrency_key": "tenant"}, "needs max_running= or rate_limit="),
        ({"ordered_by": "account", "max_running": 2}, "cannot go with ordered_by"),
    ],
)
def test_flow_options_that_cannot_hold_are_refused(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(RegistrationError, match=message):
        Registry().event_handler(topic="t", payload=Tenanted, **options)(handle)  # type: ignore[arg-type]


def test_an_overlap_policy_is_for_ticks_and_firings_and_a_known_name() -> None:
    Registry().manual(name="m", overlap="skip")(tick)  # a Jobs API schedule fires it
    with pytest.raises(RegistrationError, match="not events: use max_running="):
        Registry().event_handler(topic="t", payload=Tenanted, overlap="skip")(handle)  # type: ignore[call-arg]
    with pytest.raises(RegistrationError, match="overlap='sometimes' is none of"):
        Registry().scheduled(cron="@every 1s", overlap="sometimes")(tick)  # type: ignore[call-overload]


def _run(job: Job, n: int, status: RunStatus) -> JobRun:
    at = datetime(2026, 12, 7, tzinfo=UTC)
    return JobRun.new(
        id=f"{n:024x}", job=job, trigger=RunTrigger(type="cron"), at=at, payload=None, status=status
    )


@pytest.mark.parametrize(
    ("policy", "unfinished", "skipped"),
    [
        ("allow", [RunStatus.RUNNING, RunStatus.PENDING], False),
        ("skip", [], False),
        ("skip", [RunStatus.RUNNING], True),
        ("skip", [RunStatus.FAILED], True),
        ("buffer_one", [RunStatus.RUNNING], False),
        ("buffer_one", [RunStatus.RUNNING, RunStatus.PENDING], True),
        ("buffer_one", [RunStatus.PENDING], True),
    ],
)
def test_a_tick_under_each_overlap_policy(
    policy: Overlap, unfinished: list[RunStatus], skipped: bool
) -> None:
    registry = Registry()
    registry.scheduled(cron="@every 1s", name="job", overlap=policy)(tick)
    job = registry.get("job")
    assert job is not None
    runs = [_run(job, n, status) for n, status in enumerate(unfinished)]

    plan = plan_tick(job, runs)

    assert (plan.skip_reason is not None) == skipped
    if plan.skip_reason is not None:
        assert f"overlap='{policy}'" in plan.skip_reason
    waits_behind = policy == "buffer_one" and not skipped and bool(runs)
    assert plan.behind == (runs[0].id if waits_behind else None)
