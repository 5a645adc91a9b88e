"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against the real
stack: the worker and its daprd from `dapr run`, Redis, the MongoDB-wire server.

Screenshots of each page are saved under .state/screenshots/.
"""

import random
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from playwright.async_api import Browser, Page, async_playwright, expect
from pymongo import AsyncMongoClient

from app.db.mongo import Database, Document
from tests.e2e.deployment import (
    OPERATOR_TOKEN,
    ROOT,
    Ports,
    RunningWorker,
    database_of,
    prepare_worker,
    started,
)
from tests.e2e.workflow_instances import instance_reaching, instance_status
from tests.support import eventually, run_reaching, trigger, unique_database
from tests.workers import PAUSABLE_ORDER, PAUSABLE_TOPIC, WORKFLOW_FIXES

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / ".state" / "screenshots"
DASHBOARD_PORTS = Ports(app=18600, http=14100, grpc=15601, metrics=19690)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """A deployment of its own (app id, ports, database), stopped when the module ends: the
    session's shared worker is left to the modules that need it."""
    deployment = prepare_worker(
        tmp_path_factory.mktemp("dashboard"),
        app_id="worker-dashboard",
        ports=DASHBOARD_PORTS,
        database=unique_database("aevatar_dashboard"),
        env={},
        # The one-second cron binding of `scale_tick`, which the schedules test pauses.
        resources=[Path(__file__).parent / "components"],
    )
    with started(deployment) as running:
        yield running


@pytest.fixture(scope="module")
async def e2e_db(
    worker: RunningWorker, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Database]:
    async with database_of(worker, mongo) as db:
        yield db


def letters_key(prefix: str) -> str:
    """A key without digits or hex runs: the failure fingerprint keeps it as it is."""
    return prefix + "".join(random.choices("ghijklmnopqrstuvwxyz", k=10))


async def start(worker: RunningWorker, job: str, payload: Any = None) -> str:
    async with worker.api() as api:
        return await trigger(api, job, payload)


async def wait_for_status(worker: RunningWorker, run_id: str, *statuses: str) -> dict[str, Any]:
    async with worker.api() as api:
        return await run_reaching(api, run_id, set(statuses))


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            # Root in a container: no user namespace sandbox; /dev/shm is small.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, worker: RunningWorker) -> AsyncIterator[Page]:
    """A browser page logged in with the operator token; fails on any script error."""
    context = await browser.new_context(
        base_url=worker.app_url, viewport={"width": 1400, "height": 900}
    )
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    await opened.goto("/dashboard/login")
    await opened.fill("input[name=name]", "e2e-operator")
    await opened.fill("input[name=token]", OPERATOR_TOKEN)
    await opened.click("button:has-text('Log in')")
    await expect(opened.locator("h1")).to_have_text("Overview")
    yield opened
    await context.close()
    assert errors == [], f"script errors on the dashboard: {errors}"


async def test_a_request_without_the_session_is_refused(
    browser: Browser, worker: RunningWorker
) -> None:
    context = await browser.new_context(base_url=worker.app_url)
    anonymous = await context.new_page()
    await anonymous.goto("/dashboard/runs?job=doomed_job")
    await expect(anonymous.locator("h1")).to_have_text("Log in")
    assert "/dashboard/login?next=" in anonymous.url
    await shot(anonymous, "login")

    await anonymous.fill("input[name=token]", "not-the-token")
    await anonymous.click("button:has-text('Log in')")
    await expect(anonymous.locator(".problem")).to_contain_text("not the operator's")
    await context.close()

    run_id = await start(worker, "deferring_job")
    await wait_for_status(worker, run_id, "failed")
    async with httpx.AsyncClient(base_url=worker.app_url) as http:
        cancel = await http.post(f"/dashboard/runs/{run_id}/cancel", data={"csrf": "x"})
        assert cancel.status_code == 303
        assert cancel.headers["location"].startswith("/dashboard/login")
        # Nor does a bearer token open the dashboard's actions: they need the session's CSRF.
        forged = await http.post(
            f"/dashboard/runs/{run_id}/cancel",
            headers={"authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
        assert forged.status_code == 303
    still = await wait_for_status(worker, run_id, "failed")
    assert still["cancel_requested"] is False
    async with worker.api() as api:
        assert (await api.post(f"/api/runs/{run_id}/cancel")).status_code == 202


async def test_a_dead_run_is_requeued_from_the_failures_page_and_succeeds(
    page: Page, worker: RunningWorker, e2e_db: Database
) -> None:
    key = letters_key("dash-requeue-")
    dead_id = await start(worker, "flaky_job", {"key": key, "fail_times": 3})
    await wait_for_status(worker, dead_id, "dead")

    await page.click("nav >> text=Failures")
    group = page.locator("table.groups tr", has_text=key)
    await expect(group).to_have_count(1)
    await expect(group.locator("td.num")).to_have_text("1")
    await shot(page, "failures")
    await group.locator("a.button").click()

    await expect(page.locator("#matching")).to_have_text("1")
    await shot(page, "requeue-confirm")
    await page.click("button:has-text('Requeue 1 run')")
    await expect(page.locator(".notice")).to_contain_text("1 dead runs requeued")

    async def requeued_run() -> Document | None:
        return await e2e_db["job_runs"].find_one(
            {"trigger.requeued_from": dead_id, "status": "succeeded"}
        )

    run = await eventually(requeued_run, what="the requeued run to succeed")
    assert run["result"] == {"key": key, "attempts_seen": 4}
    assert run["attempt"] == 1

    await page.click("nav >> text=Audit log")
    entry = page.locator("table.audit tr", has_text="requeue-matching")
    await expect(entry.first).to_contain_text("e2e-operator")
    await expect(entry.first).to_contain_text("1 dead runs requeued")
    await shot(page, "audit")


async def test_a_data_processors_progress_bar_moves_without_a_reload(
    page: Page, worker: RunningWorker
) -> None:
    run_id = await start(worker, "chunked_job", {"chunks": 12, "chunk_ms": 400})
    await page.goto(f"/dashboard/runs/{run_id}")
    await page.evaluate("window.__sameDocument = true")
    bar = page.locator('[data-field="progress"]')

    seen: list[float] = []

    async def progress_moved() -> bool:
        value = float(await bar.get_attribute("aria-valuenow") or 0)
        if not seen or value != seen[-1]:
            seen.append(value)
        return len([v for v in seen if 0 < v < 100]) >= 3

    await eventually(progress_moved, within=30, interval=0.1, what="the bar to move 3 times")
    await shot(page, "run-progress")
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    await expect(page.locator('[data-field="status"] .status')).to_have_text(
        "succeeded", timeout=30_000
    )
    assert float(await bar.get_attribute("aria-valuenow") or 0) == 100.0
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"


async def test_a_workflow_run_shows_its_steps_in_turn_and_side_by_side(
    page: Page, worker: RunningWorker
) -> None:
    run_id = await start(worker, "fan_out_workflow", {"width": 3, "delay_ms": 600})
    await wait_for_status(worker, run_id, "succeeded")
    await page.goto(f"/dashboard/runs/{run_id}")
    rows = page.locator("#steps tr[data-step]")
    await expect(rows).to_have_count(4)
    await shot(page, "workflow-steps")

    spans = {}
    for i in range(4):
        row = rows.nth(i)
        name = await row.get_attribute("data-step") or ""
        began = float(await row.get_attribute("data-start-ms") or "nan")
        ended = float(await row.get_attribute("data-end-ms") or "nan")
        spans[name] = (began, ended)
    first, pieces = spans.pop("first"), list(spans.values())
    assert sorted(spans) == ["piece 1", "piece 2", "piece 3"]
    assert all(began >= first[1] for began, _ in pieces), "the fan-out began after the first"
    assert max(b for b, _ in pieces) < min(e for _, e in pieces), "side by side"
    assert await page.locator("#steps .gantt-bar").count() == 4

    await rows.nth(1).locator("a").click()
    await expect(page.locator('[data-field="parent"]')).to_have_text(run_id)


async def test_an_operator_suspends_resumes_approves_and_purges_a_workflow_from_its_page(
    page: Page, worker: RunningWorker, e2e_db: Database
) -> None:
    run_id = await start(worker, "approval_workflow")
    await instance_reaching(worker, run_id, "RUNNING")
    await page.goto(f"/dashboard/runs/{run_id}")
    await expect(page.locator('[data-field="waiting-on"]')).to_contain_text(
        "waiting for event 'approval'"
    )

    await page.click("button:has-text('Suspend')")
    await expect(page.locator(".notice")).to_contain_text(f"workflow run {run_id} suspended")
    await expect(page.locator('[data-field="suspended"]')).to_contain_text("suspended since")
    await instance_reaching(worker, run_id, "SUSPENDED")
    await shot(page, "workflow-suspended")
    await page.click("button:has-text('Resume')")
    await expect(page.locator(".notice")).to_contain_text(f"workflow run {run_id} resumed")
    await expect(page.locator('[data-field="suspended"]')).to_have_count(0)

    form = page.locator("form.raise-event")
    await form.locator("input[name=name]").fill("approval")
    await form.locator("textarea[name=data]").fill("not json")
    await form.locator("button").click()
    await expect(page.locator(".problem")).to_contain_text("the event's data is not JSON")
    await form.locator("input[name=name]").fill("approval")
    await form.locator("textarea[name=data]").fill('{"by": "dashboard", "index": 12}')
    await form.locator("button").click()
    await expect(page.locator(".notice")).to_contain_text("event 'approval' raised")
    await expect(page.locator('[data-field="status"] .status')).to_have_text(
        "succeeded", timeout=30_000
    )

    await page.reload()
    page.on("dialog", lambda dialog: dialog.accept())
    await page.click("button:has-text('Purge instance')")
    await expect(page.locator('[data-field="purged"]')).to_contain_text("purged")
    await shot(page, "workflow-purged")
    run = await e2e_db["job_runs"].find_one({"_id": ObjectId(run_id)})
    assert run is not None
    assert run["result"]["output"] == {"approved_by": "dashboard", "applied": 12}
    assert await instance_status(worker, run_id) is None
    actions = [e["action"] async for e in e2e_db["audit_log"].find({"target": run_id})]
    assert sorted(actions) == ["purge", "raise-event", "resume", "suspend"]


async def test_an_operator_reruns_a_failed_workflow_from_its_failed_step_from_its_page(
    page: Page, worker: RunningWorker, e2e_db: Database
) -> None:
    index = random.randrange(1_000, 1_000_000)
    failed_id = await start(worker, "blocked_workflow", {"index": index})
    await wait_for_status(worker, failed_id, "dead")
    await page.goto(f"/dashboard/runs/{failed_id}")
    await e2e_db[WORKFLOW_FIXES].insert_one({"_id": index, "fixed_by": "dashboard"})

    await page.click("button:has-text('Re-run from the failed step')")
    await expect(page.locator(".notice")).to_contain_text("re-run from its failed step as run")
    await expect(page.locator('[data-field="from-step"]')).to_have_text("blocked")
    await expect(page.locator('[data-field="kept-steps"]')).to_contain_text(f"run {failed_id}")
    await expect(page.locator('[data-field="status"] .status')).to_have_text(
        "succeeded", timeout=30_000
    )
    await shot(page, "workflow-rerun-from-step")
    rerun = await e2e_db["job_runs"].find_one({"trigger.retry_of": failed_id})
    assert rerun is not None
    assert rerun["trigger"]["from_step"] == "blocked"
    assert await e2e_db["job_runs"].count_documents({"parent_run_id": str(rerun["_id"])}) == 1


async def test_a_filter_url_opened_directly_shows_only_matching_runs(
    page: Page, worker: RunningWorker
) -> None:
    doomed = [await start(worker, "doomed_job") for _ in range(2)]
    key = letters_key("dash-filter-")
    wanted = await start(worker, "flaky_job", {"key": key})
    for run_id in doomed:
        await wait_for_status(worker, run_id, "dead")
    await wait_for_status(worker, wanted, "succeeded")

    await page.goto("/dashboard/runs?job=doomed_job&status=dead")
    rows = page.locator("table.runs tbody tr")
    assert await rows.count() >= 2
    for row in await rows.all():
        cells = row.locator("td")
        await expect(cells.nth(1)).to_have_text("doomed_job")
        await expect(cells.nth(3)).to_have_text("dead")
    shown = {await row.get_attribute("data-run") for row in await rows.all()}
    assert set(doomed) <= shown
    await expect(page.locator("select[name=job]")).to_have_value("doomed_job")

    await page.goto(f"/dashboard/runs?text={key}")
    await expect(rows).to_have_count(1)
    assert await rows.first.get_attribute("data-run") == wanted
    await shot(page, "runs-filtered")

    await page.click(f"a[href='/dashboard/runs/{wanted}']")
    await expect(page.locator("h1")).to_contain_text("flaky_job")
    await expect(page.locator("pre").first).to_contain_text(key)
    await shot(page, "run-detail")


async def test_the_overview_counts_update_live(page: Page, worker: RunningWorker) -> None:
    tile = page.locator('[data-count="failed"]')
    before = int(await tile.inner_text())
    await page.evaluate("window.__sameDocument = true")
    run_id = await start(worker, "deferring_job")
    await expect(tile).not_to_have_text(str(before), timeout=15_000)
    assert int(await tile.inner_text()) > before
    assert await page.evaluate("window.__sameDocument") is True
    await shot(page, "overview")
    async with worker.api() as api:
        assert (await api.post(f"/api/runs/{run_id}/cancel")).status_code == 202
    # The instance's heartbeat, with its version.
    await expect(page.locator("table").last).to_contain_text(f"{worker.instance_name(0)}-")


async def test_a_cron_job_is_paused_and_resumed_from_the_schedules_page(
    page: Page, worker: RunningWorker, e2e_db: Database
) -> None:
    await page.click("nav >> text=Schedules")
    row = page.locator("tr[data-schedule='scale-tick-cron']")
    await expect(row).to_contain_text("@every 1s")
    await row.locator("button:has-text('Pause')").click()
    await expect(page.locator(".notice")).to_contain_text("scale_tick paused")
    try:
        paused = await e2e_db["paused_jobs"].find_one({"_id": "scale_tick"})
        assert paused is not None
        paused_at = paused["paused_at"]

        async def skipped(at_least: int) -> Document | None:
            document = await e2e_db["paused_jobs"].find_one({"_id": "scale_tick"})
            return document if document and document["skipped_firings"] >= at_least else None

        def runs_since_the_pause() -> Awaitable[int]:
            return e2e_db["job_runs"].count_documents(
                {"job": "scale_tick", "trigger.type": "cron", "created_at": {"$gt": paused_at}}
            )

        # A tick whose pause check ran just before the pause was stored may still make its run
        # (on a busy machine it lands after `paused_at`); once a firing has been skipped, none may.
        await eventually(lambda: skipped(1), within=20, what="a firing of a paused binding")
        before = await runs_since_the_pause()
        await eventually(lambda: skipped(3), within=20, what="two more firings, skipped")
        assert await runs_since_the_pause() == before
        assert before <= 1
        await page.reload()
        await expect(row).to_contain_text("paused")
        await shot(page, "schedules-paused")
    finally:
        await page.goto("/dashboard/schedules")
        await row.locator("button:has-text('Resume')").click()
    await expect(page.locator(".notice")).to_contain_text("scale_tick resumed")

    async def ticking_again() -> int:
        return await e2e_db["job_runs"].count_documents(
            {"job": "scale_tick", "trigger.type": "cron", "created_at": {"$gt": paused_at}}
        )

    await eventually(ticking_again, within=20, what="a scale_tick run after resuming")


async def test_an_operator_backfills_a_range_of_ticks_after_a_dry_run(
    page: Page, e2e_db: Database
) -> None:
    # Ten ticks of the one-second cron from before this deployment started: none has a run.
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    end = start + timedelta(seconds=9)
    await page.goto("/dashboard/schedules")
    backfill = page.locator("tr[data-schedule='scale-tick-cron'] details.backfill")
    await backfill.locator("summary").click()
    form = backfill.locator("form")
    await form.locator("input[name=from]").fill(start.strftime("%Y-%m-%dT%H:%M:%S"))
    await form.locator("input[name=to]").fill(end.strftime("%Y-%m-%dT%H:%M:%S"))
    await form.locator("button:has-text('Dry run')").click()

    await expect(page.locator("h1")).to_contain_text("Backfill scale_tick")
    await expect(page.locator("#ticks")).to_have_text("10")
    await expect(page.locator("#had-runs")).to_have_text("0")
    await expect(page.locator("#missing-ticks li")).to_have_count(10)
    await shot(page, "backfill-dry-run")
    in_range = {"job": "scale_tick", "trigger.tick": {"$gte": start, "$lte": end}}
    assert await e2e_db["job_runs"].count_documents(in_range) == 0, "a dry run makes nothing"
    await page.click("button:has-text('Make 10 runs')")

    await expect(page.locator(".notice")).to_contain_text("backfill of scale_tick: 10 runs made")
    runs = await e2e_db["job_runs"].find(in_range).to_list()
    assert len(runs) == 10
    assert all(run["trigger"]["backfilled"] for run in runs)
    audited = await e2e_db["audit_log"].find_one({"action": "backfill", "target": "scale_tick"})
    assert audited is not None
    assert len(audited["run_ids"]) == 10


async def test_a_jobs_api_schedule_is_created_paused_and_deleted_from_the_page(
    page: Page, worker: RunningWorker, e2e_db: Database
) -> None:
    name = letters_key("dash-sched-")
    await page.goto("/dashboard/schedules")
    form = page.locator("form[action='/dashboard/schedules']")
    await form.locator("input[name=name]").fill(name)
    await form.locator("select[name=job]").select_option("flaky_job")
    await form.locator("input[name=cron]").fill("@every 1s")
    await form.locator("input[name=payload]").fill(f'{{"key": "{name}"}}')
    await form.locator("button:has-text('Create')").click()
    await expect(page.locator(".notice")).to_contain_text(f"schedule {name} created")

    async def fired() -> int:
        return await e2e_db["job_runs"].count_documents({"trigger.schedule": name})

    await eventually(fired, within=30, what="the new schedule to fire")
    row = page.locator(f"tr[data-schedule='{name}']")
    await row.locator("button:has-text('Pause')").click()
    await expect(page.locator(".notice")).to_contain_text("pause done")
    async with httpx.AsyncClient(base_url=worker.sidecar_url) as sidecar:
        job = await sidecar.get(f"/v1.0/jobs/{name}")
    assert job.status_code >= 400, "the sidecar still has the paused schedule's job"
    await expect(row).to_contain_text("paused")
    await shot(page, "schedules")

    page.on("dialog", lambda dialog: dialog.accept())
    await row.locator("button:has-text('Delete')").click()
    await expect(page.locator(".notice")).to_contain_text("delete done")
    await expect(row).to_have_count(0)
    assert await e2e_db["schedules"].find_one({"_id": name}) is None


async def test_every_page_renders_in_the_browser(page: Page) -> None:
    for link, heading in [
        ("Overview", "Overview"),
        ("Runs", "Runs"),
        ("Failures", "Failures"),
        ("Schedules", "Schedules"),
        ("Jobs", "Jobs"),
        ("Audit log", "Audit log"),
    ]:
        await page.click(f"nav >> text={link}")
        await expect(page.locator("h1")).to_have_text(heading)
        await shot(page, f"page-{link.lower().replace(' ', '-')}")
        if link == "Jobs":
            job = page.locator("tr[data-job='chunked_job']")
            await expect(job).to_contain_text("chunks of 1")


async def test_a_queue_is_paused_and_resumed_from_the_jobs_page_and_its_items_wait(
    page: Page, worker: RunningWorker, e2e_db: Database
) -> None:
    series = letters_key("paused-")
    await page.goto("/dashboard/jobs")
    row = page.locator("tr[data-job='pausable_queue']")
    await row.locator("button:has-text('Pause')").click()
    await expect(page.locator(".notice")).to_contain_text("pausable_queue paused")
    await expect(row.locator("[data-field=paused]")).to_contain_text("paused by e2e-operator")

    async with httpx.AsyncClient(base_url=worker.sidecar_url, timeout=10) as sidecar:
        for n in range(3):
            published = await sidecar.post(
                f"/v1.0/publish/pubsub/{PAUSABLE_TOPIC}", json={"series": series, "n": n}
            )
            assert published.status_code == 204, published.text

    def waiting() -> Awaitable[list[Document]]:
        return (
            e2e_db["job_runs"].find({"job": "pausable_queue", "payload.series": series}).to_list()
        )

    async def all_waiting() -> list[Document] | None:
        runs = await waiting()
        return runs if len(runs) == 3 and {r["status"] for r in runs} == {"pending"} else None

    held = await eventually(all_waiting, within=30, what="the three items to wait as runs")
    await page.goto(f"/dashboard/runs/{held[0]['_id']}")
    await expect(page.locator("[data-field=held]")).to_contain_text(
        "Waiting: paused by e2e-operator"
    )
    await shot(page, "run-held-by-pause")

    await page.goto("/dashboard/jobs")
    await row.locator("button:has-text('Resume')").click()
    await expect(page.locator(".notice")).to_contain_text("pausable_queue resumed")

    async def all_done() -> list[int] | None:
        done = await e2e_db[PAUSABLE_ORDER].find_one({"_id": series})
        return done["order"] if done and len(done["order"]) == 3 else None

    assert await eventually(all_done, within=30, what="the items to run") == [0, 1, 2]
    assert {run["status"] for run in await waiting()} == {"succeeded"}
    actions = await e2e_db["audit_log"].find({"target": "pausable_queue"}).to_list()
    assert [(a["action"], a["who"]) for a in actions] == [
        ("pause-job", "e2e-operator"),
        ("resume-job", "e2e-operator"),
    ]
