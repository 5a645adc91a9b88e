"""Run statistics for the dashboard, gathered in memory as attempts finish: one tally per job
and minute, written by the heartbeat a few times a minute, one upsert per job and period, so
that the run path pays no database write for them. What an instance had not written when it
died is missing from the charts (never from the run history).
"""

from datetime import datetime

from app.observability.tally import FinishedAttempt, Tally


class RunStats:
    def __init__(self) -> None:
        self._tallies: dict[tuple[datetime, str], Tally] = {}

    def attempt_finished(self, attempt: FinishedAttempt) -> None:
        self._tally(attempt.job, attempt.kind, attempt.at).count(attempt)

    def take(self) -> list[Tally]:
        """What was gathered since the last call; `give_back` it when it could not be written."""
        taken = list(self._tallies.values())
        self._tallies = {}
        return taken

    def give_back(self, tallies: list[Tally]) -> None:
        for tally in tallies:
            self._tally(tally.job, tally.kind, tally.start).merge(tally)

    def _tally(self, job: str, kind: str, at: datetime) -> Tally:
        minute = at.replace(second=0, microsecond=0)
        tally = self._tallies.get((minute, job))
        if tally is None:
            tally = self._tallies[(minute, job)] = Tally(job=job, kind=kind, start=minute)
        return tally
