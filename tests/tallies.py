"""What the exactly-once tests and their workers (`tests/transactional_workers.py`) share, in a
module that registers nothing: importing the workers would register a transactional job in the
test process's registry, and every app the process starts would need transactions."""

from pydantic import BaseModel, Field

TALLIES = "tallies"
TRANSACTIONAL_TOPIC = "tallied-once"
PLAIN_TOPIC = "tallied-plainly"
TRANSACTIONAL_JOB = "transactional_tally"
PLAIN_JOB = "plain_tally"


class Tally(BaseModel):
    key: str = Field(min_length=1)
    hold_ms: int = Field(0, ge=0, le=60_000)
    """How long the handler waits after its write, before it returns."""
    fail: bool = False


def tally_id(job: str, key: str) -> str:
    """The `tallies` document of one job's calls for one key."""
    return f"{job}:{key}"
