"""The committed generated modules are what the .proto generates."""

from pathlib import Path

from colearning.network import regenerate


def test_generated_code_matches_the_proto(tmp_path):
    generated = regenerate.generate(tmp_path)
    for path in generated:
        committed = regenerate.PACKAGE_ROOT / regenerate.PROTO.parent / path.name
        assert committed.read_text() == Path(path).read_text(), (
            f"{committed} is stale; run: python -m colearning.network.regenerate"
        )
