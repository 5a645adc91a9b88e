"""A transactional job on a server that cannot run transactions: start-up is refused with the fix.

No server on this machine refuses a transaction (SecantusDB's servers both run them, even
`secantusd-py --standalone`), so the server's answer is played by a stand-in that raises what a
standalone mongod answers: `OperationFailure` code 20 (IllegalOperation). The transactions
themselves are proven on the real server (tests/integration/test_transactions.py)."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pymongo.errors import OperationFailure

from app.core.errors import StartRefused
from app.dispatch.transactions import RunTransactions, TransactionsUnsupported

STANDALONE = {
    "ok": 0,
    "code": 20,
    "codeName": "IllegalOperation",
    "errmsg": "Transaction numbers are only allowed on a replica set member or mongos",
}


class _Session:
    def __init__(self, answer: dict[str, Any]) -> None:
        self._answer = answer

    async def __aenter__(self) -> "_Session":
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def with_transaction(self, callback: Callable[["_Session"], Awaitable[Any]]) -> None:
        raise OperationFailure(self._answer["errmsg"], self._answer["code"], self._answer)


class _Server:
    """What `RunTransactions` reaches of the database: a client that opens sessions."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.client = self
        self._answer = answer

    def start_session(self) -> _Session:
        return _Session(self._answer)

    def __getitem__(self, name: str) -> None:
        return None


async def test_a_server_without_transactions_refuses_start_up_and_says_how_to_fix_it() -> None:
    transactions = RunTransactions(_Server(STANDALONE))  # type: ignore[arg-type]

    with pytest.raises(TransactionsUnsupported) as refused:
        await transactions.ensure_ready(["tally", "ledger"])

    message = str(refused.value)
    assert isinstance(refused.value, StartRefused)
    assert "tally, ledger are transactional=True" in message
    assert "only allowed on a replica set member" in message, "the server's own words"
    assert "--replSet" in message


async def test_other_server_errors_are_not_taken_for_a_missing_replica_set() -> None:
    unauthorized = {**STANDALONE, "code": 13, "codeName": "Unauthorized", "errmsg": "no"}
    transactions = RunTransactions(_Server(unauthorized))  # type: ignore[arg-type]

    with pytest.raises(OperationFailure) as failed:
        await transactions.ensure_ready(["tally"])

    assert not isinstance(failed.value, TransactionsUnsupported)
    assert failed.value.code == 13
