"""The launcher imports, before it forks, what a framework would import on first use."""

from __future__ import annotations

import json
import subprocess
import sys

# In a fresh interpreter (this test process has imported who knows what): import torch,
# do what the launcher does before forking, count threads, then build and step an
# optimizer and list the torch modules that this still imported.
PROBE = """
import json, os, sys
import torch
from colearning.network.launcher import import_on_first_use
threads = len(os.listdir("/proc/self/task"))
done = import_on_first_use()
after = len(os.listdir("/proc/self/task"))
before = set(sys.modules)
model = torch.nn.Linear(3, 2)
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
model(torch.ones(4, 3)).sum().backward()
optimizer.step()
late = sorted(m for m in set(sys.modules) - before if m.startswith("torch._dynamo"))
print(json.dumps({"done": done, "threads": [threads, after], "late": late}))
"""


def test_torch_dynamo_is_imported_before_the_forks_and_starts_no_thread():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["done"] == ["torch._dynamo"]
    assert got["threads"][0] == got["threads"][1]  # nothing started that a fork would lose
    assert got["late"] == []  # a first optimizer step then imports none of it


def test_nothing_is_imported_for_a_framework_the_task_did_not_import():
    probe = (
        "import sys; from colearning.network.launcher import import_on_first_use; "
        "print(import_on_first_use(), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["[]", "False"]
