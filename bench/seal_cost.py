"""What sealing an accepted proposal costs, on a 45 MB model (ResNet-18's size).

The driver hands every learner the accepted weights as read-only views of the
encoded bytes whose SHA-256 is the recorded id (``WeightsRef.sealed``), so a proposer
that keeps its arrays and edits them later changes nobody's model. This measures, on
11.7 million float32 parameters in 102 arrays:

- encoding (safetensors) and hashing: what computing the id costs anyway, on the
  encoder thread while validators work (off the critical path);
- sealing: parsing the header and making the views (on the critical path, between
  the decision and the accepts);
- the alternative: a private copy of every array on the critical path.

    .venv/bin/python bench/seal_cost.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np

from colearning import Weights
from colearning.bench.machine import median_ms
from colearning.core.codec import encode
from colearning.core.weights_ref import WeightsRef


def resnet18_sized() -> Weights:
    """ResNet-18's parameter shapes (11.7 million float32 values, 46.8 MB)."""
    rng = np.random.default_rng(0)
    shapes: list[tuple[int, ...]] = [(64, 3, 7, 7)] + [(64, 64, 3, 3)] * 4
    for c_in, c in ((64, 128), (128, 256), (256, 512)):
        shapes += [(c, c_in, 3, 3), (c, c, 3, 3), (c, c, 3, 3), (c, c, 3, 3), (c, c_in, 1, 1)]
    shapes += [(1000, 512), (1000,)]
    # batch norm: weight, bias, running mean and variance after every convolution
    for c in [64] * 5 + [128] * 5 + [256] * 5 + [512] * 5:
        shapes += [(c,)] * 4
    arrays = {f"p{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    return Weights(arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    weights = resnet18_sized()
    blob = encode(weights)
    ref = WeightsRef.of(weights)
    ref.blob()
    print(f"model: {len(weights)} arrays, {weights.nbytes / 1e6:.1f} MB")
    rows = [
        ("encode (off the critical path)", lambda: encode(weights)),
        ("SHA-256 (off the critical path)", lambda: hashlib.sha256(blob).hexdigest()),
        ("seal: views of the blob (critical path)", ref.sealed),
        (
            "alternative: copy every array (critical path)",
            lambda: [np.array(a, copy=True) for a in weights.arrays.values()],
        ),
    ]
    for name, fn in rows:
        print(f"{name:<48} {median_ms(fn, args.repeats):8.2f} ms")


if __name__ == "__main__":
    main()
