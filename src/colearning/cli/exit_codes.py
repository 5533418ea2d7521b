"""Exit codes of ``colearn``, each with the help a user needs when they see it."""

from __future__ import annotations

OK = 0
FAILURE = 1
USAGE = 2
AUDIT_FAILED = 3
DAMAGED = 4
IO_ERROR = 74
INTERRUPTED = 130

HELP: dict[int, str] = {
    OK: "Success.",
    FAILURE: "An unexpected error (a bug in colearning or in a learner's code); the "
    "traceback above says where. Committed rounds are kept; continue with --resume.",
    USAGE: "The input was refused (a setting, a file, a directory); the message says "
    "which value and how to fix it. Nothing committed was changed.",
    AUDIT_FAILED: "`colearn ledger verify` found discrepancies between the experiment "
    "directory and its chain; each is listed above.",
    DAMAGED: "`colearn verify` found the experiment directory damaged (or `show`, `plot`, "
    "`export` or `--resume` read something damaged); each problem is listed, naming the "
    "round. Restore the directory from a copy, or start a new experiment.",
    IO_ERROR: "A file or directory could not be written or read (a full disk, a read-only "
    "file system, no permission, a path too long); the message names it. Committed rounds "
    "are intact; fix the cause and continue with `colearn run --resume DIR`.",
    INTERRUPTED: "Interrupted (Ctrl-C). Committed rounds are kept; continue with "
    "`colearn run --resume DIR`.",
}
