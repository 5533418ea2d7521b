"""Colearn 0.2.8's real files, read from its wheel, ported by their imports only.

``scripts/setup`` downloads the colearn 0.2.8 wheel (pure Python; Colearn's license is
CC BY-NC, so none of its code is committed here) into ``.venv/colearn-0.2.8/``. The
tests read files out of it, rewrite every ``from colearn... import`` line to ``from
colearning.compat import`` and nothing else (:func:`port`), write them to a temporary
directory and import them from there (:func:`load`).

Colearn's example scripts run a whole experiment at module level (they download
MNIST, read a Kaggle directory, train and plot). Only their definitions are loaded:
:func:`definitions` parses the source and keeps the requested classes together with
the top-level functions, literal constants and imports they use, transitively;
everything else (data loading, the training loop, the ``if __name__ == "__main__"``
block) is left out. The kept statements are Colearn's own lines, in their order.

Colearn's own interface and driver (``colearn/ml_interface.py``, which needs pydantic,
and ``colearn/standalone_driver.py``) are extracted unchanged and imported as the
package ``colearn``, so the same learner files run on both: unchanged on Colearn's
driver, ported on this library's.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEEL = ROOT / ".venv" / "colearn-0.2.8" / "colearn-0.2.8-py3-none-any.whl"
#: sha256 of the wheel PyPI serves for colearn 0.2.8
WHEEL_SHA256 = "5957e110b4a5cc57be76f026e32be55fa7f4f8eec05565ef0c2d49a2bffa5f02"
FETCH = (
    "scripts/setup, or: .venv/bin/python -m pip download --no-deps --python-version 3.8 "
    "--only-binary=:all: -d .venv/colearn-0.2.8 colearn==0.2.8"
)

_COLEARN_IMPORT = re.compile(r"^(\s*)from\s+colearn(?:\.\w+)*\s+import\b")
_ANY_COLEARN_IMPORT = re.compile(r"^\s*(?:from|import)\s+colearn(?:\.\w+)*(?:\s|,|$)", re.M)


def open_wheel() -> zipfile.ZipFile:
    """The colearn 0.2.8 wheel; fails the test (never skips) when it is missing."""
    path = Path(os.environ.get("COLEARN_028_WHEEL", WHEEL))
    if not path.is_file():
        pytest.fail(f"Colearn 0.2.8's wheel is not at {path}; fetch it with: {FETCH}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        pytest.fail(
            f"{path} is not colearn 0.2.8's wheel (sha256 {digest}, expected "
            f"{WHEEL_SHA256}); delete it and run {FETCH}"
        )
    return zipfile.ZipFile(path)


def read(wheel: zipfile.ZipFile, member: str) -> str:
    return wheel.read(member).decode("utf-8")


def port(source: str) -> str:
    """``source`` with each ``from colearn... import`` line now importing from
    ``colearning.compat``; asserts that no other line changed."""
    lines = source.splitlines(keepends=True)
    out = [_COLEARN_IMPORT.sub(r"\1from colearning.compat import", line) for line in lines]
    for before, after in zip(lines, out, strict=True):
        assert before == after or _COLEARN_IMPORT.match(before), (before, after)
    ported = "".join(out)
    assert not _ANY_COLEARN_IMPORT.search(ported), "an import of colearn is left"
    return ported


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return []  # computed at module level (data, flags): never kept
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def definitions(source: str, names: list[str]) -> str:
    """The statements of ``source`` that define ``names``, and every top-level
    function, class, literal constant and import they use, transitively, in order."""
    tree = ast.parse(source)
    binders: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        for name in _bound_names(node):
            binders.setdefault(name, []).append(node)
    keep: list[ast.stmt] = []
    todo = list(names)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in binders and name in names:
            raise AssertionError(f"{name} is not defined at the top level")
        for node in binders.get(name, []):
            if any(node is k for k in keep):
                continue
            keep.append(node)
            todo.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    lines = source.splitlines(keepends=True)
    keep.sort(key=lambda n: n.lineno)
    chunks = []
    for node in keep:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        assert node.end_lineno is not None
        chunks.append("".join(lines[start - 1 : node.end_lineno]))
    return "\n\n".join(chunks) + "\n"


def load(path: Path, name: str) -> ModuleType:
    """Import the file ``path`` as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Colearn028:
    """The files of the wheel, as modules: ``ported`` ones on ``colearning.compat``,
    ``original`` ones on Colearn's own ``colearn`` package (also extracted)."""

    port = staticmethod(port)
    definitions = staticmethod(definitions)

    def __init__(self, wheel: zipfile.ZipFile, directory: Path) -> None:
        self.wheel = wheel
        self.directory = directory
        self._colearn: ModuleType | None = None

    def source(self, member: str) -> str:
        return read(self.wheel, member)

    def _write_and_load(self, text: str, stem: str) -> ModuleType:
        path = self.directory / f"{stem}.py"
        path.write_text(text)
        return load(path, stem)

    def ported(self, member: str, classes: list[str] | None = None) -> ModuleType:
        """``member`` with its imports ported (only ``classes`` and what they use,
        for an example script)."""
        text = port(self.source(member))
        if classes is not None:
            text = definitions(text, classes)
        return self._write_and_load(text, "ported_" + Path(member).stem)

    def colearn(self) -> ModuleType:
        """Colearn 0.2.8's own ``colearn`` package (interface, driver, training)."""
        if self._colearn is None:
            root = self.directory / "colearn-0.2.8"
            for member in self.wheel.namelist():
                if member.startswith("colearn/") and member.endswith(".py"):
                    self.wheel.extract(member, root)
            if "colearn" in sys.modules:
                self._colearn = sys.modules["colearn"]
            else:
                sys.path.insert(0, str(root))
                try:
                    self._colearn = importlib.import_module("colearn")
                    importlib.import_module("colearn.ml_interface")
                    importlib.import_module("colearn.standalone_driver")
                    importlib.import_module("colearn.training")
                finally:
                    sys.path.remove(str(root))
        return self._colearn

    def original(self, member: str, classes: list[str] | None = None) -> ModuleType:
        """``member`` unchanged, on Colearn's own interface."""
        self.colearn()
        text = self.source(member)
        if classes is not None:
            text = definitions(text, classes)
        return self._write_and_load(text, "colearn028_" + Path(member).stem)


@pytest.fixture(scope="session")
def colearn028(tmp_path_factory: pytest.TempPathFactory) -> Colearn028:
    """Colearn 0.2.8's files (see the module docstring)."""
    return Colearn028(open_wheel(), tmp_path_factory.mktemp("colearn028"))
