"""An event published again under its id at another second: two runs of one occurrence.

A delivered event's run id comes from (job, event id) and the second it was published (its
CloudEvent `time`, which daprd sets when the publisher did not): every delivery of one
publish is the same run, and a handler idempotent per run id applies it once. A publisher that
sends the event again (its answer was lost) without its `time` makes a second publish, whose
run id differs. When the two copies reach two instances at once, both look the occurrence up
before either is stored, and both run; only the first write stores a run. The other's effect
cannot be undone here, so it is said: on the stored run (a refusal naming the other run) and
in the log.
"""

from loguru import logger

from app.core.clock import utc_now
from app.dispatch.engine import EngineParts
from app.models.runs import JobRun, Refusal


async def note_if_sent_again(parts: EngineParts, run: JobRun, dedupe_key: str) -> None:
    """`run` (not stored) lost its write to the occurrence's run: says so on that run when it
    is another run, a copy of the event published at another second."""
    stored = await parts.runs.find_by_dedupe_key(job=run.job, dedupe_key=dedupe_key)
    if stored is None or stored.id == run.id:
        return  # the same run, stored by the instance that ran another delivery of it
    reason = (
        f"the event was published again under its id at another second (its `time`) and ran "
        f"as run {run.id} on {parts.instance} beside this run, before either was stored: a "
        "handler idempotent per run id may have applied it for both. A publisher that sends "
        "an event again must send it with its `time`"
    )
    await parts.runs.note_refusal(
        job=run.job,
        dedupe_key=dedupe_key,
        refusal=Refusal(instance=parts.instance, at=utc_now(), reason=reason),
    )
    logger.bind(job=run.job, run_id=run.id, stored_run_id=stored.id, dedupe_key=dedupe_key).warning(
        "an event published again at another second ran twice: said on its stored run"
    )
