"""An experiment's ledger as it lives in the experiment directory.

Layout of ``DIR/ledger/``::

    ledger.json    where the contract is (chain, chain id, address, deployment block),
                   the experiment id, each learner's address, the operator's address
    keys.json      the learners' private keys (simulations only; mode 0600)
    chain.sqlite   the embedded chain's database (blocks, receipts, state), block by block

The contract's address is known before its deployment is sent (the operator's address
and nonce fix it), so ``ledger.json`` is written first; a run killed between the two
deploys again with the same nonce, to the same address.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from colearning.core.exceptions import LedgerError
from colearning.core.tally import threshold_fraction
from colearning.ledger.chain import Chain, EmbeddedChain, RpcChain
from colearning.ledger.client import (
    DEFAULT_PROPOSE_PERIOD,
    DEFAULT_VOTE_PERIOD,
    LedgerClient,
    LedgerConfig,
    contract_address,
)
from colearning.ledger.contract import artifact
from colearning.ledger.keys import (
    Key,
    generate_simulation_keys,
    load_simulation_keys,
    operator_key,
)

LEDGER_DIR = "ledger"
INFO_NAME = "ledger.json"
KEYS_NAME = "keys.json"
CHAIN_DB = "chain.sqlite"
INFO_VERSION = 1
#: deployments tried when another transaction of the operator's took the nonce planned on
_DEPLOY_ATTEMPTS = 3


@dataclass(frozen=True)
class LedgerInfo:
    """What ``ledger.json`` records."""

    chain: str  # "embedded" or "rpc"
    chain_id: int
    chain_url: str | None
    contract: str  # checksum address
    deploy_nonce: int
    experiment: str  # 0x + 64 hex digits
    operator: str
    learners: dict[str, str]  # learner id -> checksum address, in experiment order
    vote_mode: str
    contract_source_sha256: str
    version: int = INFO_VERSION
    deploy_block: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def read(cls, path: Path) -> LedgerInfo:
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except FileNotFoundError as exc:
            raise LedgerError(
                f"{path} is missing: this experiment directory has no ledger (it was not "
                "run with --ledger evm)"
            ) from exc
        except (ValueError, TypeError) as exc:
            raise LedgerError(f"{path} cannot be read as a ledger record ({exc})") from exc


def ledger_dir(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / LEDGER_DIR


def has_ledger(directory: str | os.PathLike[str]) -> bool:
    return (ledger_dir(directory) / INFO_NAME).is_file()


def open_chain(directory: Path | None, info: LedgerInfo | None, chain_url: str | None) -> Chain:
    """The chain an experiment's ledger is on: ``chain_url`` if given (or recorded),
    else the embedded chain kept in ``directory``."""
    if info is not None and info.chain == "embedded" and chain_url:
        raise LedgerError(
            f"this experiment's ledger is on the embedded chain kept in "
            f"{directory}/{LEDGER_DIR}/{CHAIN_DB}; drop --chain-url"
        )
    url = chain_url or (info.chain_url if info is not None else None)
    if info is not None and info.chain == "rpc" and not url:
        raise LedgerError("this experiment's ledger is on a JSON-RPC chain; pass --chain-url URL")
    if url:
        chain: Chain = RpcChain(url)
    else:
        log = None if directory is None else ledger_dir(directory) / CHAIN_DB
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        chain = EmbeddedChain(log)
    if info is not None and chain.chain_id != info.chain_id:
        chain.close()
        raise LedgerError(
            f"the chain at {url} has chain id {chain.chain_id}; this experiment's ledger "
            f"is on chain id {info.chain_id}. Pass the --chain-url of that chain"
        )
    return chain


class Ledger:
    """An experiment's chain, contract and learner keys (see the module docstring).

    Open with :meth:`open`; :meth:`deploy` once the initial weights are known (a
    no-op when the contract is deployed already).
    """

    def __init__(
        self,
        directory: Path | None,
        chain: Chain,
        learner_ids: Sequence[str],
        keys: dict[str, Key],
        operator: Key,
        info: LedgerInfo | None,
        vote_mode: str = "batched",
    ) -> None:
        self.directory = directory
        self.chain = chain
        self.learner_ids = list(learner_ids)
        self.keys = keys
        self.operator = operator
        self.info = info
        self.vote_mode = vote_mode
        self.client: LedgerClient | None = None
        if info is not None:
            self.client = LedgerClient(chain, _addr(info.contract), operator)

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str] | None,
        learner_ids: Sequence[str],
        chain_url: str | None = None,
        vote_mode: str = "batched",
    ) -> Ledger:
        """The ledger of the experiment in ``directory`` (``None``: in memory only)."""
        if vote_mode not in ("batched", "each"):
            raise LedgerError(f"vote_mode must be 'batched' or 'each'; got {vote_mode!r}")
        path = Path(directory) if directory is not None else None
        info = None
        if path is not None and has_ledger(path):
            info = LedgerInfo.read(ledger_dir(path) / INFO_NAME)
            if list(info.learners) != list(learner_ids):
                raise LedgerError(
                    f"the ledger in {path} registers learners {list(info.learners)}; the "
                    f"experiment has {list(learner_ids)}"
                )
            vote_mode = info.vote_mode
        chain = open_chain(path, info, chain_url)
        try:
            if path is None:
                keys = {lid: Key.generate() for lid in learner_ids}
            elif info is not None or (ledger_dir(path) / KEYS_NAME).exists():
                keys = load_simulation_keys(ledger_dir(path) / KEYS_NAME)
            else:
                keys = generate_simulation_keys(ledger_dir(path) / KEYS_NAME, learner_ids)
            if info is not None:
                for lid, address in info.learners.items():
                    if keys[lid].checksum != address:
                        raise LedgerError(
                            f"{ledger_dir(path or Path())}/{KEYS_NAME} holds another key for "
                            f"{lid} than the one registered ({address})"
                        )
            env_key = os.environ.get("COLEARN_OPERATOR_KEY_FILE")
            operator = operator_key(chain.chain_id, env_key, chain.kind == "embedded")
            return cls(path, chain, learner_ids, keys, operator, info, vote_mode)
        except BaseException:
            chain.close()
            raise

    @property
    def deployed(self) -> bool:
        return self.client is not None

    def deploy(
        self,
        vote_threshold: float,
        initial_weights_id: str,
        propose_period: int = DEFAULT_PROPOSE_PERIOD,
        vote_period: int = DEFAULT_VOTE_PERIOD,
        committee: int = 0,
    ) -> LedgerClient:
        """Deploy the contract (once); check an existing one holds these settings.
        ``committee``: voters the chain draws each round (0: every non-proposer)."""
        threshold = threshold_fraction(vote_threshold)
        config = LedgerConfig(
            experiment=secrets.token_bytes(32),
            learners=tuple(self.keys[lid].address for lid in self.learner_ids),
            threshold=threshold,
            propose_period=propose_period,
            vote_period=vote_period,
            initial_weights=bytes.fromhex(initial_weights_id),
            committee=committee,
        )
        if self.info is not None:
            config = LedgerConfig(**{**config.__dict__, "experiment": _b32(self.info.experiment)})
            client = LedgerClient(self.chain, _addr(self.info.contract), self.operator)
            # no deploy_block: the run stopped before the deployment's receipt, so it may
            # never have been sent, and the operator's nonce it planned on may have gone
            # to another transaction since (another run paid by the same account, on a
            # shared node): the recorded address then holds nothing, or another run's
            # contract, and this run's deployment can no longer land there
            confirmed = self.info.deploy_block is not None
            if self.chain.code(client.address):
                if confirmed or self._belongs(client, config):
                    self._check(client, config)
                    self.client = client
                    return client
                self.info = None  # another run's: deploy anew below, where the nonce is now
            elif not confirmed:
                if self.chain.nonce(self.operator.address) != self.info.deploy_nonce:
                    self.info = None  # its nonce is spent (or gone): plan anew below
            elif self.chain.kind == "rpc" and self.chain.nonce(self.operator.address) > (
                self.info.deploy_nonce
            ):
                raise LedgerError(
                    f"no ledger contract at {self.info.contract} on {self.chain.where}: the "
                    "chain lost its state (restart anvil with --state FILE to keep it) or "
                    "this is another chain"
                )
        for attempt in range(_DEPLOY_ATTEMPTS):
            if self.info is None:
                nonce = self.chain.nonce(self.operator.address)
                self.info = LedgerInfo(
                    chain=self.chain.kind,
                    chain_id=self.chain.chain_id,
                    chain_url=getattr(self.chain, "url", None),
                    contract=to_checksum_address(contract_address(self.operator.address, nonce)),
                    deploy_nonce=nonce,
                    experiment="0x" + config.experiment.hex(),
                    operator=self.operator.checksum,
                    learners={lid: self.keys[lid].checksum for lid in self.learner_ids},
                    vote_mode=self.vote_mode,
                    contract_source_sha256=artifact().source_sha256,
                )
                self._write_info()
            try:
                client, receipt = LedgerClient.deploy(
                    self.chain, self.operator, config, nonce=self.info.deploy_nonce
                )
                break
            except LedgerError:
                # another transaction of the operator's (another run paid by the same
                # account on this node) took the nonce between the recording and the
                # sending: nothing of this run is on the chain; plan anew
                if (
                    attempt + 1 == _DEPLOY_ATTEMPTS
                    or self.chain.nonce(self.operator.address) <= self.info.deploy_nonce
                    or (
                        self.chain.code(_addr(self.info.contract))
                        and self._belongs(
                            LedgerClient(self.chain, _addr(self.info.contract), self.operator),
                            config,
                        )
                    )
                ):
                    raise
                self.info = None
        info = self.info
        assert info is not None  # the attempt that deployed recorded it
        if to_checksum_address(client.address) != info.contract:
            raise LedgerError(
                f"the contract was deployed at {to_checksum_address(client.address)}, not at "
                f"the recorded {info.contract}"
            )
        self.info = LedgerInfo(**{**info.__dict__, "deploy_block": receipt.block_number})
        self._write_info()
        self.client = client
        return client

    def _belongs(self, client: LedgerClient, want: LedgerConfig) -> bool:
        """Whether the contract at ``client`` is this experiment's (its random id)."""
        try:
            return bool(client.config().experiment == want.experiment)
        except LedgerError:  # not a ledger contract at all
            return False

    def _check(self, client: LedgerClient, want: LedgerConfig) -> None:
        got = client.config()
        for name in ("learners", "threshold", "initial_weights", "experiment", "committee"):
            if getattr(got, name) != getattr(want, name):
                raise LedgerError(
                    f"the ledger contract at {to_checksum_address(client.address)} holds "
                    f"another {name} than this experiment; it belongs to another run"
                )

    def _write_info(self) -> None:
        if self.directory is None or self.info is None:
            return
        path = ledger_dir(self.directory) / INFO_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(self.info.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def require_client(self) -> LedgerClient:
        if self.client is None:
            raise LedgerError("the ledger contract is not deployed yet")
        return self.client

    def describe(self) -> dict[str, Any]:
        info = self.info
        return {
            "chain": self.chain.kind,
            "chain_id": self.chain.chain_id,
            "chain_url": getattr(self.chain, "url", None),
            "contract": None if info is None else info.contract,
            "vote_mode": self.vote_mode,
        }

    def close(self) -> None:
        self.chain.close()


def _addr(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def _b32(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))
