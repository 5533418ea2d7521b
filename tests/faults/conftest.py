"""The fault harness (``harness.py``) is a module of this directory, shared with
``bench/faults.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
