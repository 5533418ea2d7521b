import subprocess
import sys

import colearning

HEAVY = [
    "torch",
    "tensorflow",
    "keras",
    "sklearn",
    "xgboost",
    "grpc",
    "web3",
    "matplotlib",
    "opacus",
    "onnx",
    "pandas",
]


def test_import_colearning_loads_no_heavy_framework():
    code = (
        "import sys, colearning, colearning.testing;"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_colearning_compat_loads_no_heavy_framework():
    """Colearn's names (plot, ONNX conversion) import their frameworks when used."""
    code = (
        "import sys, colearning.compat;"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_one_sorted_list():
    assert colearning.__all__ == sorted(colearning.__all__)
    assert len(set(colearning.__all__)) == len(colearning.__all__)
    for name in colearning.__all__:
        assert getattr(colearning, name) is not None


def test_py_typed_marker_ships():
    from importlib.resources import files

    assert files("colearning").joinpath("py.typed").is_file()
