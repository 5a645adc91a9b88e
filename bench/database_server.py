"""A MongoDB-wire server of the benchmark's own: SecantusDB (Rust or Python) on a port of its
own, on a fresh store in a temporary folder, stopped afterwards."""

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymongo

from tests.support import eventually_sync

PYTHON_SERVER = Path(__file__).resolve().parents[1] / ".venv/bin/secantusd-py"


@contextmanager
def database_server(binary: Path, port: int) -> Iterator[int]:
    """Starts `binary` on 127.0.0.1:`port` and yields its pid once it answers."""
    with tempfile.TemporaryDirectory() as storage:
        server = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", str(port),
             "--storage-path", storage, "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            eventually_sync(lambda: _answers(port), within=60, what=f"{binary.name} on {port}")
            yield server.pid
        finally:
            server.terminate()
            server.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            f"mongodb://127.0.0.1:{port}/?retryWrites=false", serverSelectionTimeoutMS=500
        )
        with client:
            client.admin.command("ping")
    except pymongo.errors.PyMongoError:
        return False
    return True
