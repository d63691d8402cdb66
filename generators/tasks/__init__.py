"""The task registry: ``get_task("qa")``; ``TASKS`` maps every training task's name to it.

A new task is one module: subclass :class:`Task` (its prompt file under
``generators/prompts/<name>.<version>.md``, its output schema, its ``records``; set
``uses_context`` if the student's prompt shows chunks, ``row_kind`` if it is not a plain
chat) and call :func:`register_task` with an instance. Generation, training's row selection,
``--tasks`` and the dashboard read the registry.
"""

from generators.errors import TaskError
from generators.tasks.base import Record, Task
from generators.tasks.builtin import BUILTIN_TASKS, EVAL_TASK, default_context

TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task (an instance) under its name; a name taken twice is an error."""
    if task.name in TASKS and TASKS[task.name] is not task:
        raise TaskError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise TaskError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None


def task_names(*, row_kind: str | None = None, uses_context: bool | None = None) -> list[str]:
    """Registered task names, optionally only those of a row kind or context use."""
    return [n for n, t in TASKS.items()
            if (row_kind is None or t.row_kind == row_kind)
            and (uses_context is None or t.uses_context == uses_context)]


for _task in BUILTIN_TASKS:
    register_task(_task)

__all__ = ["EVAL_TASK", "TASKS", "Record", "Task", "default_context", "get_task",
           "register_task", "task_names"]
