"""Named tasks (data set + model recipe) and the runner behind ``colearn run``."""

from colearning.tasks.registry import BuildContext, Task, get_task, list_tasks, register_task
from colearning.tasks.runner import RunConfig, RunOutcome, build, resume_task, run_task

__all__ = [
    "BuildContext",
    "RunConfig",
    "RunOutcome",
    "Task",
    "build",
    "get_task",
    "list_tasks",
    "register_task",
    "resume_task",
    "run_task",
]
