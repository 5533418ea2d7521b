"""The ledger contract as it ships: Vyper source, ABI and bytecode, and the ABI coding.

``contract/Ledger.vy`` is compiled with Vyper 0.4.3 for the ``cancun`` EVM (pinned in
the source's pragmas and here); ``contract/Ledger.json`` holds the result. A test
recompiles the source and fails if the shipped ABI or bytecode differ, so what runs on
chain is what the source says. Recompiling needs ``vyper`` (the ``dev`` extra); using
the contract does not.

Calls are encoded and logs decoded here with ``eth_abi`` directly, from the ABI: the
per-call cost of a general contract wrapper was a large share of a round's client time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from colearning.core.exceptions import LedgerError

VYPER_VERSION = "0.4.3"
EVM_VERSION = "cancun"
SOURCE_NAME = "Ledger.vy"
ARTIFACT_NAME = "Ledger.json"
MAX_LEARNERS = 255

# the contract's ballot codes, as signed
REJECT, APPROVE, ABSTAIN = 0, 1, 2
# why a round was skipped
SKIP_PASSED, SKIP_DEADLINE = 1, 2


def source_text() -> str:
    return files("colearning.ledger").joinpath("contract", SOURCE_NAME).read_text()


def compile_source(source: str | None = None) -> dict[str, Any]:
    """Compile the contract (needs the ``vyper`` package) into the artifact's form."""
    try:
        import vyper
        from vyper.compiler.settings import OptimizationLevel, Settings
    except ImportError as exc:  # pragma: no cover - dev extra
        raise LedgerError(
            "recompiling the ledger contract needs vyper; run: pip install 'colearning[dev]'"
        ) from exc
    if vyper.__version__ != VYPER_VERSION:
        raise LedgerError(
            f"the ledger contract is pinned to vyper {VYPER_VERSION}; vyper "
            f"{vyper.__version__} is installed. Run: pip install vyper=={VYPER_VERSION}"
        )
    text = source_text() if source is None else source
    out = vyper.compile_code(
        text,
        contract_path=SOURCE_NAME,
        output_formats=["abi", "bytecode", "bytecode_runtime"],
        settings=Settings(evm_version=EVM_VERSION, optimize=OptimizationLevel.GAS),
    )
    return {
        "contract": "Ledger",
        "compiler": f"vyper {VYPER_VERSION}",
        "evm_version": EVM_VERSION,
        "source_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "abi": out["abi"],
        "bytecode": out["bytecode"],
        "bytecode_runtime": out["bytecode_runtime"],
    }


@dataclass(frozen=True)
class Function:
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class EventSpec:
    name: str
    topic: bytes
    names: tuple[str, ...]
    indexed: tuple[bool, ...]
    types: tuple[str, ...]


@dataclass(frozen=True)
class Artifact:
    """The compiled contract and its ABI, indexed for encoding."""

    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime: bytes
    compiler: str
    evm_version: str
    source_sha256: str
    functions: dict[str, Function]
    events: dict[bytes, EventSpec]
    constructor: tuple[str, ...]

    def call_data(self, name: str, *args: Any) -> bytes:
        """The calldata of ``name(*args)``."""
        fn = self.functions[name]
        return fn.selector + abi_encode(list(fn.inputs), list(args))

    def decode_output(self, name: str, data: bytes) -> tuple[Any, ...]:
        return tuple(abi_decode(list(self.functions[name].outputs), data))

    def deploy_data(self, *args: Any) -> bytes:
        return self.bytecode + abi_encode(list(self.constructor), list(args))

    def decode_event(self, topics: list[bytes], data: bytes) -> tuple[str, dict[str, Any]] | None:
        """``(event name, fields)`` of one log of this contract, or ``None``."""
        if not topics:
            return None
        spec = self.events.get(topics[0])
        if spec is None:
            return None
        plain = [t for t, ix in zip(spec.types, spec.indexed, strict=True) if not ix]
        values = iter(abi_decode(plain, data))
        topic_values = iter(topics[1:])
        fields: dict[str, Any] = {}
        for name, typ, ix in zip(spec.names, spec.types, spec.indexed, strict=True):
            if ix:
                fields[name] = abi_decode([typ], next(topic_values))[0]
            else:
                fields[name] = next(values)
        return spec.name, fields


def _canonical(param: dict[str, Any]) -> str:
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param["components"])
        return f"({inner}){typ[5:]}"
    return typ


def artifact_from(data: dict[str, Any]) -> Artifact:
    functions: dict[str, Function] = {}
    events: dict[bytes, EventSpec] = {}
    constructor: tuple[str, ...] = ()
    for entry in data["abi"]:
        kind = entry.get("type")
        inputs = tuple(_canonical(p) for p in entry.get("inputs", []))
        if kind == "function":
            signature = f"{entry['name']}({','.join(inputs)})"
            functions[entry["name"]] = Function(
                entry["name"],
                keccak(text=signature)[:4],
                inputs,
                tuple(_canonical(p) for p in entry.get("outputs", [])),
            )
        elif kind == "event":
            signature = f"{entry['name']}({','.join(inputs)})"
            events[keccak(text=signature)] = EventSpec(
                entry["name"],
                keccak(text=signature),
                tuple(p["name"] for p in entry["inputs"]),
                tuple(bool(p.get("indexed")) for p in entry["inputs"]),
                inputs,
            )
        elif kind == "constructor":
            constructor = inputs
    return Artifact(
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        runtime=bytes.fromhex(data["bytecode_runtime"].removeprefix("0x")),
        compiler=data["compiler"],
        evm_version=data["evm_version"],
        source_sha256=data["source_sha256"],
        functions=functions,
        events=events,
        constructor=constructor,
    )


@cache
def artifact() -> Artifact:
    """The shipped contract."""
    text = files("colearning.ledger").joinpath("contract", ARTIFACT_NAME).read_text()
    return artifact_from(json.loads(text))


def write_artifact() -> str:
    """Recompile the source and rewrite the shipped artifact (for maintainers)."""
    data = compile_source()
    path = files("colearning.ledger").joinpath("contract", ARTIFACT_NAME)
    text = json.dumps(data, indent=1) + "\n"
    with open(str(path), "w") as fh:
        fh.write(text)
    artifact.cache_clear()
    return str(path)


if __name__ == "__main__":  # pragma: no cover - maintainers: python -m colearning.ledger.contract
    print(f"wrote {write_artifact()}")
