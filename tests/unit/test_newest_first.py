"""Which index-led queries a filter of the run history is read with, and what is checked on
the runs they return (SecantusDB scans the collection for any other query shape)."""

from app.models.runs import RunStatus
from app.repositories.newest_first import plan_for


def test_a_small_status_leads_and_the_job_is_checked() -> None:
    plan = plan_for(job="sync", status=RunStatus.DEAD, checks={"requeued_as": None})
    assert plan.led == [{"status": "dead"}]
    assert plan.keeps({"job": "sync", "requeued_as": None})
    assert not plan.keeps({"job": "other"})
    assert not plan.keeps({"job": "sync", "requeued_as": "r2"})


def test_the_job_leads_for_succeeded_runs_and_each_status_is_asked_without_a_filter() -> None:
    plan = plan_for(job="sync", status=RunStatus.SUCCEEDED)
    assert plan.led == [{"job": "sync"}]
    assert plan.keeps({"status": "succeeded"})
    assert not plan.keeps({"status": "dead"})
    assert plan_for(status=RunStatus.SUCCEEDED).led == [{"status": "succeeded"}]
    assert plan_for(status=RunStatus.SUCCEEDED).keeps({"status": "succeeded"})
    assert [q["status"] for q in plan_for().led] == [s.value for s in RunStatus]


def test_several_jobs_are_asked_one_by_one_or_checked_under_a_status() -> None:
    assert plan_for(jobs=["a", "b"]).led == [{"job": "a"}, {"job": "b"}]
    assert plan_for(jobs=[]).led == []
    under = plan_for(jobs=["a", "b"], status=RunStatus.FAILED)
    assert under.led == [{"status": "failed"}]
    assert under.keeps({"job": "b"})
    assert not under.keeps({"job": "c"})


def test_checks_follow_dotted_paths() -> None:
    plan = plan_for(job="j", checks={"trigger.type": "cron"})
    assert plan.keeps({"trigger": {"type": "cron"}})
    assert not plan.keeps({"trigger": {"type": "manual"}})
    assert not plan.keeps({"trigger": None})
