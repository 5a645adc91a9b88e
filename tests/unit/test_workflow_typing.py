"""mypy catches a workflow step called with a payload its job (or activity) does not take."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WORKFLOW = """
from pydantic import BaseModel

from app.workers import Flow, JobContext, Steps, registry


class Order(BaseModel):
    order_id: str


class Refund(BaseModel):
    amount: int


@registry.manual(payload=Order)
async def ship(order: Order, ctx: JobContext) -> None: ...


@registry.activity()
async def invoice(order: Order) -> dict[str, str]:
    return {{"invoiced": order.order_id}}


@registry.workflow(payload=Order)
def fulfil(order: Order, flow: Flow) -> Steps:
    yield flow.step({job}, {step})
"""


def mypy_on(tmp_path: Path, step: str, job: str = "ship") -> subprocess.CompletedProcess[str]:
    source = tmp_path / "workflow_example.py"
    source.write_text(WORKFLOW.format(step=step, job=job))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(source)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_a_step_with_its_jobs_payload_type_checks(tmp_path: Path) -> None:
    checked = mypy_on(tmp_path, "order")
    assert checked.returncode == 0, checked.stdout


def test_a_step_with_another_payload_is_a_type_error(tmp_path: Path) -> None:
    checked = mypy_on(tmp_path, "Refund(amount=1)")
    assert checked.returncode == 1
    assert 'Argument 1 to "step" of "Flow"' in checked.stdout, checked.stdout


def test_a_plain_activity_is_typed_like_a_job(tmp_path: Path) -> None:
    fits = mypy_on(tmp_path, "order", job="invoice")
    wrong = mypy_on(tmp_path, "Refund(amount=1)", job="invoice")
    assert fits.returncode == 0, fits.stdout
    assert wrong.returncode == 1
    assert 'Argument 1 to "step" of "Flow"' in wrong.stdout, wrong.stdout
