"""ReportsWorkflow: the customer summaries recomputed, then the daily report of each of the
last three days written, the three side by side. A workflow that needs no payload, so that a
fresh `make run` can show one: `POST /api/jobs/ReportsWorkflow/trigger`, then
`GET /api/runs?parent=<its run id>` lists its four steps."""

from datetime import timedelta

from app.workers import Flow, Steps, registry
from app.workers.builtin.customer_summaries import RecomputeRequest, recompute_customer_summaries
from app.workers.builtin.scheduled_report import ReportRequest, write_daily_report

DAYS = 3


@registry.workflow(name="ReportsWorkflow")
def summaries_then_reports(flow: Flow) -> Steps:
    """Recomputes the customer summaries, then writes the last three days' reports at once."""
    summaries = yield flow.step(recompute_customer_summaries, RecomputeRequest())
    today = flow.now.date()
    reports = yield flow.all(
        [
            flow.step(
                write_daily_report,
                ReportRequest(date=today - timedelta(days=days)),
                name=f"report of {today - timedelta(days=days)}",
            )
            for days in range(1, DAYS + 1)
        ]
    )
    return {"summaries": summaries, "reports": reports}
