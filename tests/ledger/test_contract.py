"""What ships is what the source says: the recompiled contract equals the shipped ABI
and bytecode, for the pinned compiler and EVM version; the ledger extra is optional."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys

import pytest

from colearning.core.exceptions import MissingExtraError
from colearning.ledger.contract import (
    EVM_VERSION,
    VYPER_VERSION,
    artifact,
    compile_source,
    source_text,
)


def test_recompiled_source_equals_the_shipped_artifact():
    shipped = artifact()
    fresh = compile_source()
    assert fresh["source_sha256"] == shipped.source_sha256, (
        "run: python -m colearning.ledger.contract"
    )
    assert fresh["abi"] == shipped.abi
    assert bytes.fromhex(fresh["bytecode"][2:]) == shipped.bytecode
    assert bytes.fromhex(fresh["bytecode_runtime"][2:]) == shipped.runtime


def test_compiler_and_evm_version_are_pinned_in_the_source():
    text = source_text()
    assert re.search(rf"^# pragma version {re.escape(VYPER_VERSION)}$", text, re.M)
    assert re.search(rf"^# pragma evm-version {EVM_VERSION}$", text, re.M)
    assert artifact().evm_version == EVM_VERSION == "cancun"


def test_a_missing_ledger_extra_names_the_pip_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "web3" else real(name, *a)
    )
    monkeypatch.delitem(sys.modules, "colearning.ledger")
    with pytest.raises(MissingExtraError, match=r"pip install 'colearning\[ledger\]'"):
        importlib.import_module("colearning.ledger")
