"""The chain seam: where the ledger's transactions go.

:class:`Chain` is what the ledger client needs from an Ethereum chain: send a signed
transaction and get its mined receipt, call a view, read logs. Two chains stand behind
it, both real EVMs:

- :class:`EmbeddedChain`: an in-process chain (eth-tester's py-evm backend, pinned to
  the Cancun EVM the contract is compiled for). Its clock is its own (one second a
  block, from a fixed genesis), so the same transactions always give the same state
  root. With a ``path`` its database is one SQLite file in the experiment directory,
  committed block by block: a reopened chain continues where it stopped, and
  :meth:`EmbeddedChain.replay_check` rebuilds it from the stored signed transactions
  and compares every state root.
- :class:`RpcChain`: any JSON-RPC node (anvil, a public test network) through web3's
  HTTP provider. Transactions carry fixed gas limits and fees (no estimate or fee
  look-up per call); a reverted transaction's reason is fetched by replaying it as a
  call, only when it failed.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

from colearning.core.exceptions import LedgerError

#: The embedded chain's genesis time (2023-11-14); its clock then ticks a second a block.
GENESIS_TIME = 1_700_000_000
#: Fees on dev chains (the embedded chain, anvil): a fixed cap, no tip. A fresh dev
#: chain's base fee starts at 1 gwei and falls while blocks are nearly empty. On other
#: chains the cap is twice the base fee seen when connecting, plus a 1 gwei tip: one
#: fee look-up per process, none per transaction.
MAX_FEE_PER_GAS = 3 * 10**9
PRIORITY_FEE_PER_GAS = 0
DEV_CHAIN_IDS = (31337, 1337)
_ERROR_SELECTOR = bytes.fromhex("08c379a0")


@dataclass(frozen=True)
class Log:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class Receipt:
    tx_hash: bytes
    status: bool
    gas_used: int
    block_number: int
    logs: tuple[Log, ...]
    contract_address: bytes | None = None
    revert_reason: str | None = None


def revert_reason(data: bytes) -> str:
    """The ``Error(string)`` message in revert ``data``, else a short description."""
    if data[:4] == _ERROR_SELECTOR:
        try:
            return str(abi_decode(["string"], data[4:])[0])
        except Exception:  # garbled revert data
            pass
    if not data:
        return "reverted without a reason (out of gas, or an invalid opcode)"
    return f"reverted with data 0x{data.hex()}"


class Chain(abc.ABC):
    """An Ethereum chain, as the ledger client uses it."""

    #: ``"embedded"`` or ``"rpc"``.
    kind: str
    chain_id: int
    #: Where it is, for messages (a URL, or the log file).
    where: str
    #: The fee cap and tip its transactions offer (wei per gas).
    max_fee_per_gas: int = MAX_FEE_PER_GAS
    priority_fee_per_gas: int = PRIORITY_FEE_PER_GAS

    @abc.abstractmethod
    def send_raw(self, raw: bytes) -> Receipt:
        """Send a signed transaction; return its receipt once mined."""

    @abc.abstractmethod
    def call(self, to: bytes, data: bytes, sender: bytes | None = None) -> bytes:
        """Run a view call on the latest block; a revert raises :class:`LedgerError`."""

    @abc.abstractmethod
    def logs(self, address: bytes, from_block: int = 0, to_block: int | None = None) -> list[Log]:
        """Every log ``address`` emitted in the block range, in chain order."""

    @abc.abstractmethod
    def code(self, address: bytes) -> bytes: ...

    @abc.abstractmethod
    def nonce(self, address: bytes) -> int: ...

    @abc.abstractmethod
    def balance(self, address: bytes) -> int: ...

    @abc.abstractmethod
    def block_number(self) -> int: ...

    @abc.abstractmethod
    def timestamp(self) -> int:
        """The latest block's timestamp."""

    @abc.abstractmethod
    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock on by ``seconds`` and mine a block (dev chains only)."""

    def state_root(self) -> bytes | None:
        """The latest block's state root, where the chain tells it."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


# -- the embedded chain ---------------------------------------------------------------

#: eth-tester's chain id, kept for the embedded chain.
EMBEDDED_CHAIN_ID = 131277322940537


class _SqliteKV:
    """py-evm's key-value database in one SQLite file: every write of a block goes
    into one SQLite transaction, committed once the block is mined, so a killed
    process leaves the chain at its last whole block."""

    def __init__(self, path: Path) -> None:
        import sqlite3

        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
        )
        # the receipts' logs by block, written with their block: an index, as a node
        # keeps one (reading 1,000 blocks' receipts back through py-evm took seconds)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS logs (block INTEGER NOT NULL, position INTEGER NOT "
            "NULL, address BLOB NOT NULL, topics BLOB NOT NULL, data BLOB NOT NULL, "
            "tx_hash BLOB NOT NULL, PRIMARY KEY (block, position))"
        )
        self._open = False

    def _begin(self) -> None:
        if not self._open:
            self._conn.execute("BEGIN")
            self._open = True

    def commit(self) -> None:
        if self._open:
            self._conn.execute("COMMIT")
            self._open = False

    def rollback(self) -> None:
        if self._open:
            self._conn.execute("ROLLBACK")
            self._open = False

    def get(self, key: bytes) -> bytes | None:
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, key: bytes, value: bytes) -> None:
        self._begin()
        self._conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def delete(self, key: bytes) -> bool:
        self._begin()
        return self._conn.execute("DELETE FROM kv WHERE k = ?", (key,)).rowcount > 0

    def put_logs(self, logs: Sequence[Log]) -> None:
        self._begin()
        self._conn.executemany(
            "INSERT OR REPLACE INTO logs VALUES (?, ?, ?, ?, ?, ?)",
            [
                (g.block_number, g.log_index, g.address, b"".join(g.topics), g.data, g.tx_hash)
                for g in logs
            ],
        )

    def logs_of_block(self, number: int) -> list[Log]:
        addresses = self._conn.execute(
            "SELECT DISTINCT address FROM logs WHERE block = ?", (number,)
        ).fetchall()
        found = [g for (a,) in addresses for g in self.logs(bytes(a), number, number)]
        return sorted(found, key=lambda g: g.log_index)

    def logs(self, address: bytes, first: int, last: int) -> list[Log]:
        rows = self._conn.execute(
            "SELECT block, position, topics, data, tx_hash FROM logs WHERE address = ? AND "
            "block BETWEEN ? AND ? ORDER BY block, position",
            (address, first, last),
        )
        return [
            Log(
                address=address,
                topics=tuple(bytes(t[i : i + 32]) for i in range(0, len(t), 32)),
                data=bytes(d),
                block_number=int(b),
                tx_hash=bytes(h),
                log_index=int(p),
            )
            for b, p, t, d, h in rows
        ]

    def close(self) -> None:
        self.rollback()
        self._conn.close()


def _db(kv: _SqliteKV | None) -> Any:
    """An atomic py-evm database: over ``kv``, or in memory."""
    from eth.db.atomic import AtomicDB
    from eth.db.backends.base import BaseDB

    if kv is None:
        return AtomicDB()
    store = kv

    class SqliteDB(BaseDB):
        def __getitem__(self, key: bytes) -> bytes:
            value = store.get(key)
            if value is None:
                raise KeyError(key)
            return value

        def __setitem__(self, key: bytes, value: bytes) -> None:
            store.put(key, value)

        def __delitem__(self, key: bytes) -> None:
            if not store.delete(key):
                raise KeyError(key)

        def _exists(self, key: bytes) -> bool:
            return store.get(key) is not None

    return AtomicDB(SqliteDB())


def _randao(block_number: int) -> bytes:
    """The embedded chain's RANDAO value of a block: ``keccak256(number)``, fixed, so
    that a replay of the chain rebuilds it (a simulation's chain; see docs/ledger.md)."""
    return keccak(block_number.to_bytes(32, "big"))


def _open_block(chain: Any, timestamp: int) -> None:
    """Set the pending block's clock and its RANDAO value (what PREVRANDAO reads while
    its transaction runs: the value the block is then mined with)."""
    chain.set_header_timestamp(timestamp)
    chain.header = chain.header.copy(mix_hash=_randao(chain.header.block_number))


def _chain_class() -> Any:
    from eth.chains.base import MiningChain
    from eth.consensus import ConsensusApplier, NoProofConsensus
    from eth.vm.forks import CancunVM

    vm_config = ConsensusApplier(NoProofConsensus).amend_vm_configuration(((0, CancunVM),))

    class EmbeddedCancunChain(MiningChain):
        chain_id = EMBEDDED_CHAIN_ID
        vm_configuration = vm_config

        def create_header_from_parent(self, parent_header: Any, **params: Any) -> Any:
            # a constant gas limit, as eth-tester keeps it
            return super().create_header_from_parent(
                parent_header, **{**params, "gas_limit": parent_header.gas_limit}
            )

        def get_transaction_builder(self) -> Any:
            return super().get_vm().get_transaction_builder()

    return EmbeddedCancunChain


def _genesis() -> tuple[dict[str, Any], dict[bytes, dict[str, Any]], bytes]:
    from eth_keys import keys
    from eth_tester import PyEVMBackend

    from colearning.ledger.keys import EMBEDDED_OPERATOR_KEY

    operator = keys.PrivateKey(bytes.fromhex(EMBEDDED_OPERATOR_KEY[2:]))
    address = bytes(operator.public_key.to_canonical_address())
    state = {address: {"balance": 10**9 * 10**18, "storage": {}, "code": b"", "nonce": 0}}
    params = PyEVMBackend.generate_genesis_params(overrides={"timestamp": GENESIS_TIME})
    return params, state, address


class EmbeddedChain(Chain):
    """An in-process EVM chain (eth-tester's py-evm backend, Cancun), one block per
    transaction, with a deterministic clock (one second a block).

    With ``path`` the chain's database is that SQLite file, committed block by block:
    reopening it continues the same chain. :meth:`replay_check` rebuilds the chain
    from its stored signed transactions and compares every block's state root.

    >>> chain = EmbeddedChain()
    >>> chain.block_number(), chain.timestamp() == GENESIS_TIME
    (0, True)
    """

    kind = "embedded"

    def __init__(self, path: str | os.PathLike[str] | None = None, read_only: bool = False) -> None:
        from eth_tester import PyEVMBackend

        self.path = Path(path) if path is not None else None
        if read_only and (self.path is None or not self.path.exists()):
            raise LedgerError(f"{self.path} is missing: the embedded chain's database is gone")
        self._kv = _SqliteKV(self.path) if self.path is not None else None
        self.read_only = read_only
        self.where = str(self.path) if self.path else "the embedded chain (in memory)"
        cls = _chain_class()
        db = _db(self._kv)
        params, state, self._caller = _genesis()
        try:
            self._chain = cls(db)  # an existing chain: continue at its head
        except Exception:  # py-evm's "no canonical head": a new chain
            if read_only:
                raise LedgerError(f"{self.path} holds no chain") from None
            self._chain = cls.from_genesis(db, params, state)
            self._commit()
        self.chain_id = EMBEDDED_CHAIN_ID
        # eth-tester's backend runs view calls (it normalizes the call for py-evm)
        self._backend = PyEVMBackend.__new__(PyEVMBackend)
        self._backend.chain = self._chain
        self._backend.account_keys = ()
        self._logs: dict[int, tuple[Log, ...]] = {}

    def _commit(self) -> None:
        if self._kv is not None:
            self._kv.commit()

    # -- blocks ---------------------------------------------------------------------

    def _head(self) -> Any:
        return self._chain.get_canonical_head()

    def _mine(self, timestamp: int) -> Any:
        number = self._chain.header.block_number
        return self._chain.mine_block(timestamp=timestamp, mix_hash=_randao(number))

    def _apply(self, raw: bytes, timestamp: int) -> Receipt:
        from eth_utils import ValidationError

        if self.read_only:
            raise LedgerError(f"{self.where} is open read-only")
        chain = self._chain
        try:
            tx = chain.get_vm().get_transaction_builder().decode(raw)
        except Exception as exc:  # not a transaction
            raise LedgerError(f"not a valid signed transaction: {exc}") from exc
        _open_block(chain, timestamp)
        try:
            _, receipt, computation = chain.apply_transaction(tx)
        except ValidationError as exc:
            if self._kv is not None:
                self._kv.rollback()
            raise LedgerError(f"the embedded chain refused the transaction: {exc}") from exc
        block = self._mine(timestamp)
        logs = _block_logs(block.number, bytes(tx.hash), receipt.logs, 0)
        if self._kv is not None:
            self._kv.put_logs(logs)
        self._commit()
        reason = None
        if computation.is_error:
            err = computation.error
            data = err.args[0] if err.args and isinstance(err.args[0], bytes) else b""
            reason = revert_reason(data) if data or not err.args else str(err)
        self._logs[block.number] = logs
        created = None
        if not tx.to and not computation.is_error:
            from eth._utils.address import generate_contract_address

            created = bytes(generate_contract_address(tx.sender, tx.nonce))
        return Receipt(
            tx_hash=bytes(tx.hash),
            status=not computation.is_error,
            gas_used=int(receipt.gas_used),
            block_number=block.number,
            logs=logs,
            contract_address=created,
            revert_reason=reason,
        )

    def _block_logs(self, number: int) -> tuple[Log, ...]:
        if number not in self._logs:
            block = self._chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(self._chain.chaindb)
            out: list[Log] = []
            for tx, receipt in zip(block.transactions, receipts, strict=True):
                out.extend(_block_logs(number, bytes(tx.hash), receipt.logs, len(out)))
            self._logs[number] = tuple(out)
        return self._logs[number]

    def replay_check(self) -> list[str]:
        """Replay every stored block's signed transactions on a fresh chain; name each
        block whose state root differs (nothing: the chain is what its transactions
        make)."""
        fresh = EmbeddedChain()
        problems = []
        for number in range(1, self.block_number() + 1):
            block = self._chain.get_canonical_block_by_number(number)
            chain = fresh._chain
            _open_block(chain, block.header.timestamp)
            for tx in block.transactions:
                chain.apply_transaction(tx)
            mined = fresh._mine(block.header.timestamp)
            if self._kv is not None:
                indexed = [g for g in self._kv.logs_of_block(number)]
                self._logs.pop(number, None)
                if indexed != list(self._block_logs(number)):
                    problems.append(f"block {number}: the log index differs from its receipts")
                    break
            if mined.header.state_root != block.header.state_root:
                problems.append(
                    f"block {number}: its transactions give state root "
                    f"0x{mined.header.state_root.hex()}, the stored block says "
                    f"0x{block.header.state_root.hex()}"
                )
                break
        fresh.close()
        return problems

    # -- Chain ----------------------------------------------------------------------

    def send_raw(self, raw: bytes) -> Receipt:
        return self._apply(raw, self._head().timestamp + 1)

    def call(self, to: bytes, data: bytes, sender: bytes | None = None) -> bytes:
        from eth_tester.exceptions import TransactionFailed

        # a view call is paid by nobody, but py-evm checks the sender could afford it
        tx = {"from": sender or self._caller, "to": to, "data": data, "gas": 10_000_000}
        try:
            return bytes(self._backend.call(tx, "latest"))
        except TransactionFailed as exc:
            arg = exc.args[0] if exc.args else b""
            raise LedgerError(revert_reason(arg) if isinstance(arg, bytes) else str(arg)) from None

    def logs(self, address: bytes, from_block: int = 0, to_block: int | None = None) -> list[Log]:
        last = self.block_number() if to_block is None else to_block
        if self._kv is not None:
            return self._kv.logs(address, max(from_block, 1), last)
        return [
            log
            for number in range(max(from_block, 1), last + 1)
            for log in self._block_logs(number)
            if log.address == address
        ]

    def _state(self) -> Any:
        return self._chain.get_vm(self._head()).state

    def code(self, address: bytes) -> bytes:
        return bytes(self._state().get_code(address))

    def nonce(self, address: bytes) -> int:
        return int(self._state().get_nonce(address))

    def balance(self, address: bytes) -> int:
        return int(self._state().get_balance(address))

    def block_number(self) -> int:
        return int(self._head().block_number)

    def timestamp(self) -> int:
        return int(self._head().timestamp)

    def state_root(self) -> bytes:
        return bytes(self._head().state_root)

    def advance_time(self, seconds: int) -> None:
        if self.read_only:
            raise LedgerError(f"{self.where} is open read-only")
        timestamp = self._head().timestamp + int(seconds)
        self._chain.set_header_timestamp(timestamp)
        self._mine(timestamp)
        self._commit()

    def close(self) -> None:
        if self._kv is not None:
            self._kv.close()
            self._kv = None


def _block_logs(number: int, tx_hash: bytes, entries: Any, start: int) -> tuple[Log, ...]:
    return tuple(
        Log(
            address=bytes(entry.address),
            topics=tuple(t.to_bytes(32, "big") for t in entry.topics),
            data=bytes(entry.data),
            block_number=number,
            tx_hash=tx_hash,
            log_index=start + i,
        )
        for i, entry in enumerate(entries)
    )


# -- a JSON-RPC node --------------------------------------------------------------------


class RpcChain(Chain):
    """A chain behind a JSON-RPC URL (anvil, a test network), through web3's HTTP
    provider; requests go straight to the provider, without web3's per-call
    formatting."""

    kind = "rpc"

    def __init__(self, url: str, receipt_timeout: float = 300.0) -> None:
        from urllib.parse import urlparse

        import requests
        from web3 import HTTPProvider

        self.url = self.where = url
        session = requests.Session()
        options: dict[str, Any] = {}
        if urlparse(url).hostname in ("127.0.0.1", "localhost", "::1"):
            # a local node: no proxy settings read from the environment per request, and
            # a refused connection is an answer (web3 would retry it with back-off)
            session.trust_env = False
            options["exception_retry_configuration"] = None
        self._provider = HTTPProvider(
            url, request_kwargs={"timeout": 60}, session=session, **options
        )
        self.receipt_timeout = receipt_timeout
        self._sync = True  # until the node says it has no eth_sendRawTransactionSync
        self.chain_id = int(self._rpc("eth_chainId", []), 16)
        if self.chain_id not in DEV_CHAIN_IDS:
            self.priority_fee_per_gas = 10**9
            self.max_fee_per_gas = 2 * self.base_fee() + self.priority_fee_per_gas

    def _rpc(self, method: str, params: Sequence[Any]) -> Any:
        try:
            response = self._provider.make_request(method, list(params))
        except Exception as exc:  # requests' many connection errors
            raise LedgerError(
                f"cannot reach the chain at {self.url} ({type(exc).__name__}); start a node "
                "there (e.g. colearn ledger anvil) or pass the right --chain-url"
            ) from None
        if response.get("error"):
            raise _RpcError(method, response["error"])
        return response.get("result")

    def send_raw(self, raw: bytes) -> Receipt:
        if self._sync:
            # EIP-7966: one round trip that returns the mined receipt (anvil has it)
            try:
                got = self._rpc("eth_sendRawTransactionSync", ["0x" + raw.hex()])
            except _RpcError as exc:
                if not exc.unsupported():
                    raise LedgerError(
                        f"the chain at {self.url} refused the transaction: {exc}"
                    ) from None
                self._sync = False
            else:
                return self._finish(raw, self._receipt(got))
        try:
            tx_hash = self._rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
        except _RpcError as exc:
            raise LedgerError(f"the chain at {self.url} refused the transaction: {exc}") from None
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.0
        while True:
            got = self._rpc("eth_getTransactionReceipt", [tx_hash])
            if got is not None:
                break
            if time.monotonic() > deadline:
                raise LedgerError(
                    f"transaction {tx_hash} was not mined within {self.receipt_timeout:.0f} s "
                    f"on {self.url}"
                )
            time.sleep(delay)
            delay = min(0.5, delay + 0.01)
        return self._finish(raw, self._receipt(got))

    def _finish(self, raw: bytes, receipt: Receipt) -> Receipt:
        if receipt.status:
            return receipt
        return Receipt(**{**receipt.__dict__, "revert_reason": self._why(raw, receipt)})

    def _why(self, raw: bytes, receipt: Receipt) -> str:
        """A failed transaction's revert reason: replay it as a call on its parent block."""
        try:
            tx = self._rpc("eth_getTransactionByHash", ["0x" + receipt.tx_hash.hex()])
            self._rpc(
                "eth_call",
                [
                    {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]},
                    hex(receipt.block_number - 1),
                ],
            )
        except _RpcError as exc:
            return exc.reason()
        return "reverted (the reason could not be recovered by replaying it)"

    def _receipt(self, got: dict[str, Any]) -> Receipt:
        logs = tuple(_log(entry) for entry in got.get("logs") or ())
        created = got.get("contractAddress")
        return Receipt(
            tx_hash=_bytes(got["transactionHash"]),
            status=int(got["status"], 16) == 1,
            gas_used=int(got["gasUsed"], 16),
            block_number=int(got["blockNumber"], 16),
            logs=logs,
            contract_address=_bytes(created) if created else None,
        )

    def call(self, to: bytes, data: bytes, sender: bytes | None = None) -> bytes:
        request: dict[str, Any] = {"to": "0x" + to.hex(), "data": "0x" + data.hex()}
        if sender is not None:
            request["from"] = "0x" + sender.hex()
        try:
            return _bytes(self._rpc("eth_call", [request, "latest"]))
        except _RpcError as exc:
            raise LedgerError(exc.reason()) from None

    def logs(self, address: bytes, from_block: int = 0, to_block: int | None = None) -> list[Log]:
        last = self.block_number() if to_block is None else to_block
        out: list[Log] = []
        step = 10_000  # public nodes cap a log query's range
        start = from_block
        while start <= last:
            end = min(last, start + step - 1)
            got = self._rpc(
                "eth_getLogs",
                [{"address": "0x" + address.hex(), "fromBlock": hex(start), "toBlock": hex(end)}],
            )
            out.extend(_log(entry) for entry in got or ())
            start = end + 1
        return out

    def code(self, address: bytes) -> bytes:
        return _bytes(self._rpc("eth_getCode", ["0x" + address.hex(), "latest"]))

    def nonce(self, address: bytes) -> int:
        return int(self._rpc("eth_getTransactionCount", ["0x" + address.hex(), "pending"]), 16)

    def balance(self, address: bytes) -> int:
        return int(self._rpc("eth_getBalance", ["0x" + address.hex(), "latest"]), 16)

    def block_number(self) -> int:
        return int(self._rpc("eth_blockNumber", []), 16)

    def timestamp(self) -> int:
        return int(self._rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def state_root(self) -> bytes:
        return _bytes(self._rpc("eth_getBlockByNumber", ["latest", False])["stateRoot"])

    def advance_time(self, seconds: int) -> None:
        try:
            self._rpc("evm_increaseTime", [int(seconds)])
            self._rpc("evm_mine", [])
        except _RpcError as exc:
            raise LedgerError(
                f"the chain at {self.url} cannot move its clock ({exc}); only dev chains "
                "such as anvil can"
            ) from None

    def base_fee(self) -> int:
        block = self._rpc("eth_getBlockByNumber", ["latest", False])
        return int(block.get("baseFeePerGas") or "0x0", 16)


class _RpcError(Exception):
    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.error = error if isinstance(error, dict) else {"message": str(error)}
        super().__init__(f"{method}: {self.error.get('message')}")

    def unsupported(self) -> bool:
        """The node does not know the method."""
        message = str(self.error.get("message") or "").lower()
        return (
            self.error.get("code") == -32601
            or "not found" in message
            or ("not supported" in message or "unsupported" in message)
        )

    def reason(self) -> str:
        data = self.error.get("data")
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x") and len(data) > 2:
            return revert_reason(_bytes(data))
        message = str(self.error.get("message") or "reverted")
        return message.removeprefix("execution reverted: ").removeprefix("execution reverted")


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _log(entry: dict[str, Any]) -> Log:
    return Log(
        address=_bytes(entry["address"]),
        topics=tuple(_bytes(t) for t in entry["topics"]),
        data=_bytes(entry["data"]),
        block_number=int(entry["blockNumber"], 16),
        tx_hash=_bytes(entry["transactionHash"]),
        log_index=int(entry["logIndex"], 16),
    )
