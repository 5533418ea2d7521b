"""Exit codes of ``colearn``, each with the help a user needs when they see it."""

from __future__ import annotations

OK = 0
FAILURE = 1
USAGE = 2
AUDIT_FAILED = 3
INTERRUPTED = 130

HELP: dict[int, str] = {
    OK: "Success.",
    FAILURE: "An unexpected error (a bug in colearning or in a learner's code); the "
    "traceback above says where. Committed rounds are kept; continue with --resume.",
    USAGE: "The input was refused (a setting, a file, a directory); the message says "
    "which value and how to fix it. Nothing committed was changed.",
    AUDIT_FAILED: "`colearn ledger verify` found discrepancies between the experiment "
    "directory and its chain; each is listed above.",
    INTERRUPTED: "Interrupted (Ctrl-C). Committed rounds are kept; continue with "
    "`colearn run --resume DIR`.",
}
