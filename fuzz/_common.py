"""What every harness shares: the seed corpus, the memory bound, the libFuzzer run."""

from __future__ import annotations

import hashlib
import os
import resource
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

#: The address space a harness may use (bytes): far above what any input needs (the
#: inputs are at most a few MB) and far below a claimed 100 GB array, so a decoder that
#: allocates what a header claims fails with MemoryError, which is a crash here.
ADDRESS_SPACE = int(os.environ.get("COLEARNING_FUZZ_ADDRESS_SPACE", 6 << 30))

#: libFuzzer's default input length ceiling for these harnesses (bytes).
MAX_LEN = 1 << 16


def limit_memory(limit: int = ADDRESS_SPACE) -> None:
    """Bound the process's address space (``RLIMIT_AS``); called after the imports."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def write_corpus(directory: Path, seeds: Iterable[bytes]) -> int:
    """Write each seed as a file named by its SHA-256 (as libFuzzer names its own)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = 0
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        n += 1
    return n


def main(
    test_one: Callable[[bytes], None],
    seeds: Callable[[], Iterable[bytes]],
    argv: list[str] | None = None,
    max_len: int = MAX_LEN,
) -> None:
    """Run ``test_one`` under atheris with libFuzzer's flags from ``argv``.

    Positional arguments are corpus directories (libFuzzer's own convention); the
    seeds are written into the first (with none, into a temporary one used as the
    corpus).
    ``-seeds_only`` runs every seed once through ``test_one`` without atheris (a quick
    check that the seeds decode).
    """
    import atheris

    args = list(sys.argv if argv is None else argv)
    if "-seeds_only" in args:
        for seed in seeds():
            test_one(seed)
        return
    corpora = [a for a in args[1:] if not a.startswith("-")]
    if corpora:
        write_corpus(Path(corpora[0]), seeds())
    else:
        scratch = Path(tempfile.mkdtemp(prefix="colearning-fuzz-"))
        write_corpus(scratch, seeds())
        args.append(str(scratch))
    if not any(a.startswith("-max_len=") for a in args):
        args.append(f"-max_len={max_len}")
    if not any(a.startswith("-rss_limit_mb=") for a in args):
        args.append(f"-rss_limit_mb={ADDRESS_SPACE >> 20}")
    limit_memory()
    atheris.Setup(args, test_one)
    atheris.Fuzz()
