"""Regenerate the Python modules of the wire schema from ``_proto/colearning.proto``.

Run ``python -m colearning.network.regenerate`` after editing the ``.proto`` (it needs
``grpcio-tools``, in the ``dev`` extra); ``tests/network/test_proto.py`` fails while the
committed modules differ from what this writes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from colearning.core.exceptions import require_extra

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding colearning/
PROTO = Path("colearning/network/_proto/colearning.proto")
GENERATED = ("colearning_pb2.py", "colearning_pb2.pyi", "colearning_pb2_grpc.py")


def generate(out_root: Path) -> list[Path]:
    """Run protoc on the schema, writing the modules under ``out_root`` (which mirrors the
    source tree); return their paths."""
    require_extra("grpc_tools", "dev", "regenerating the wire schema")
    from grpc_tools import protoc

    include = str(Path(protoc.__file__).parent / "_proto")
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PACKAGE_ROOT}",
            f"-I{include}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            str(PACKAGE_ROOT / PROTO),
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed on {PROTO} (exit {code})")
    return [out_root / PROTO.parent / name for name in GENERATED]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            target = PACKAGE_ROOT / PROTO.parent / path.name
            shutil.copyfile(path, target)
            print(f"wrote {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
