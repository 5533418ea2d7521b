"""Every install hint names the extra that really holds the package.

``require_extra(module, extra, feature)`` tells a user to ``pip install
'colearning[extra]'``; this test reads every such call in the source and checks, in
``pyproject.toml``, that the named extra does bring the module's distribution.
"""

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "colearning"

#: import name -> the distributions that provide it
DISTRIBUTIONS = {
    "sklearn": {"scikit-learn"},
    "skops": {"skops"},
    "skl2onnx": {"skl2onnx"},
    "mlxtend": {"mlxtend"},
    "torch": {"torch"},
    "onnx": {"onnx"},
    "onnxscript": {"onnxscript"},
    "onnxruntime": {"onnxruntime"},
    "onnxmltools": {"onnxmltools"},
    "opacus": {"opacus"},
    "keras": {"keras"},
    "xgboost": {"xgboost", "xgboost-cpu"},
    "matplotlib": {"matplotlib"},
    "grpc": {"grpcio"},
    "grpc_tools": {"grpcio-tools"},
    "google.protobuf": {"protobuf"},
    "cryptography": {"cryptography"},
    "web3": {"web3"},
    "eth_tester": {"eth-tester"},
    "eth_account": {"eth-account"},
    "vyper": {"vyper"},
    "ray": {"ray"},
}


def extras() -> dict[str, set[str]]:
    """Each extra's distributions, with ``colearning[...]`` includes resolved."""
    raw = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def resolve(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        out: set[str] = set()
        for requirement in raw[name]:
            nested = re.match(r"colearning\[([^\]]+)\]", requirement)
            if nested:
                for inner in nested.group(1).split(","):
                    if inner not in seen:
                        out |= resolve(inner.strip(), seen | {name})
            else:
                out.add(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower())
        return out

    return {name: resolve(name) for name in raw}


def calls() -> list[tuple[str, int, str, str]]:
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "require_extra"
                and len(node.args) >= 2
                and all(isinstance(a, ast.Constant) for a in node.args[:2])
            ):
                module, extra = node.args[0].value, node.args[1].value
                found.append((str(path.relative_to(ROOT)), node.lineno, module, extra))
    return found


@pytest.mark.parametrize("where, line, module, extra", calls())
def test_the_named_extra_brings_the_module(where, line, module, extra):
    assert module in DISTRIBUTIONS, f"{where}:{line}: add {module!r} to DISTRIBUTIONS"
    brought = extras().get(extra)
    assert brought is not None, f"{where}:{line}: there is no extra {extra!r}"
    assert DISTRIBUTIONS[module] & brought, (
        f"{where}:{line}: require_extra({module!r}, {extra!r}) tells users to install "
        f"colearning[{extra}], which does not bring {sorted(DISTRIBUTIONS[module])}"
    )


def test_calls_were_found():
    assert len(calls()) >= 15


def test_task_extras_name_a_module_that_extra_brings():
    from colearning.tasks.registry import list_tasks
    from colearning.tasks.runner import _module_of_extra

    for task in list_tasks():
        if not task.make_learner.__module__.startswith("colearning."):
            continue  # a test's own task
        if task.extra is None:  # needs the core install alone
            continue
        module = _module_of_extra(task.extra)
        assert DISTRIBUTIONS[module] & extras()[task.extra], task.name
