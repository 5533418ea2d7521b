"""The docs' code runs: every ```python block of each page, in order, in one namespace."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2]
PAGES = ["docs/tutorial.md", "docs/data.md", "docs/modes.md", "README.md"]


def blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = blocks(DOCS / page)
    if page == "docs/tutorial.md":
        assert len(code) >= 6
    namespace: dict = {"__name__": "__docs__"}
    for i, source in enumerate(code):
        try:
            exec(compile(source, f"{page} block {i + 1}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page}, code block {i + 1} failed: {exc!r}") from exc
