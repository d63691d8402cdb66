"""Tasks by name: ``get_task("qa")``; ``TASKS`` lists them all."""

from generators.errors import TaskError
from generators.tasks.base import Record, Task
from generators.tasks.builtin import EVAL_TASK, TASKS, default_context


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise TaskError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None


__all__ = ["EVAL_TASK", "TASKS", "Record", "Task", "default_context", "get_task"]
