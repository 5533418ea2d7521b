"""docs/porting.md's code runs: its ```python blocks, in order, in one namespace."""

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "porting.md"


def test_porting_page_code_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert blocks
    namespace: dict = {"__name__": "__docs__"}
    for i, source in enumerate(blocks):
        exec(compile(source, f"docs/porting.md block {i + 1}", "exec"), namespace)
    results = namespace["results"]
    assert len(results.data) == 5
    assert all(r.errors == [None, None, None] for r in results.data[1:])
    assert "LATEST ROUND RESULTS" in capsys.readouterr().out


def test_porting_page_is_linked_from_the_readme():
    readme = (PAGE.parents[1] / "README.md").read_text()
    assert "(docs/porting.md)" in readme
