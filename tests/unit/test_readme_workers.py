"""The example workers of the README and of docs/writing-workers.md are complete files: each
type-checks and registers."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", REPO / "docs" / "writing-workers.md"]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

REGISTER_ALL = """
import importlib, sys
from app.workers import registry
before = {w.name for w in registry}
for module in sys.argv[1:]:
    importlib.import_module(module)
print(sorted({w.name for w in registry} - before))
"""


def _example_files(directory: Path) -> list[str]:
    texts = [document.read_text() for document in DOCUMENTS]
    blocks = [b for text in texts for b in PYTHON_BLOCK.findall(text) if "@registry." in b]
    modules = []
    for number, block in enumerate(blocks):
        (directory / f"readme_worker_{number}.py").write_text(block)
        modules.append(f"readme_worker_{number}")
    return modules


def test_every_example_file_type_checks_and_registers(tmp_path: Path) -> None:
    modules = _example_files(tmp_path)
    assert len(modules) >= 7, "one complete file for each kind"

    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--no-error-summary",
         *(str(tmp_path / f"{m}.py") for m in modules)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout
    registered = subprocess.run(
        [sys.executable, "-c", REGISTER_ALL, *modules],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == str(
        sorted(
            [
                "morning_digest",
                "rebuild_search_index",
                "on_order_placed",
                "make_thumbnail",
                "store_page_views",
                "reindex_products",
                "sync_crm",
                "record_page_view",
                "reserve_stock",
                "release_stock",
                "charge_card",
                "fulfil_order",
                "recount_range",
                "recount_orders",
                "recount_orders.plan",
                "credit_account",
                "export_invoice",
                "push_invoice",
                "reconcile",
                "archive_invoice",
                "send_invoice",
                "reconcile_ledgers",
            ]
        )
    )
