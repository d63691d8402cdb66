"""One plugin mechanism: entry-point groups, one per kind of extension, and one call.

A distribution adds a teacher, task, metric, setup, model kind, retrieval method, reranker,
embedder, student loader, dashboard screen or CLI verb by naming an object in its
``entry_points.txt`` (or ``[project.entry-points."synthloop.metrics"]`` in its
``pyproject.toml``)::

    [synthloop.teachers]
    shouty = my_package.teacher:factory

    [synthloop.metrics]
    short = my_package.metrics:SHORT

Every one of them goes through :func:`register`, the call the project's own loop-side
built-ins use too (the ``hf:``/``smollm2`` teachers and the student loaders, in
:func:`_builtins`); the libraries (``generators``, ``retrieval``) register their built-ins
with their own registry functions, which :func:`register` calls. A name registered twice
is one error for every kind, naming both owners. :func:`load_plugins` runs once per
process; the CLI and every stage entry (which the dashboard's workers call) run it.

What an entry point names, per kind (``name`` is the entry point's name):

==================  ======================  ==============================================
kind                group                   object
==================  ======================  ==============================================
teacher             synthloop.teachers      ``factory(model, **options) -> Teacher``
                                            (``needs_model = False`` on it: the bare name
                                            is a whole URI)
task                synthloop.tasks         a ``generators.tasks.Task`` (or its class)
metric              synthloop.metrics       a ``loop.eval.metrics.Metric``
setup               synthloop.setups        a ``loop.eval.setups.Setup``
model_kind          synthloop.model_kinds   a ``loop.kinds.ModelKind``
retrieval_method    synthloop.retrieval     ``rank(index, query, vector, n)``, ranked alone
                                            (``needs_vector = True`` on it for dense ones)
reranker            synthloop.rerankers     ``factory(rest) -> Reranker``
embedder            synthloop.embedders     ``factory(rest) -> Embedder``
student             synthloop.students      a ``StudentLoader`` (``bare = True``: the name
                                            alone is a URI)
screen              synthloop.screens       a ``tui.screens.ScreenSpec`` (the dashboard
                                            adds this kind)
verb                synthloop.verbs         ``register(app)`` adding a Typer command
==================  ======================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loop.errors import SynthloopError


class PluginError(SynthloopError):
    """A plugin that cannot load, or a name two owners register."""


@dataclass(frozen=True)
class Kind:
    name: str
    group: str  # the entry-point group
    names: Callable[[], list[str]]  # what is registered now
    add: Callable[[str, Any], None]  # register an object under a name


KINDS: dict[str, Kind] = {}
OWNERS: dict[tuple[str, str], str] = {}  # (kind, name) -> "built-in" or the distribution
_loaded = False


def register_kind(kind: Kind) -> Kind:
    """Add a kind of extension (the dashboard adds ``screen``)."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise PluginError(f"plugin kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def register(kind: str, name: str, obj: Any, *, owner: str = "built-in") -> None:
    """Register ``obj`` as the ``kind`` named ``name``; a name already taken is refused."""
    if kind not in KINDS:
        raise PluginError(f"no plugin kind {kind!r} (known: {', '.join(KINDS)})")
    k = KINDS[kind]
    if name in k.names() or (kind, name) in OWNERS:
        raise PluginError(f"{kind} {name!r} from {owner} is already registered "
                          f"(by {OWNERS.get((kind, name), 'built-in')})",
                          hint=f"rename it in {owner}'s entry points, or uninstall one of them")
    k.add(name, obj)
    OWNERS[(kind, name)] = owner


def registered(kind: str) -> list[dict[str, str]]:
    """``[{name, owner}]`` of a kind, as the registry lists them."""
    load_plugins()
    return [{"name": n, "owner": OWNERS.get((kind, n), "built-in")} for n in KINDS[kind].names()]


def load_plugins() -> None:
    """Register the loop-side built-ins, then every installed entry point of every kind
    (verbs excepted: the CLI loads those into its app when it is imported). Once per
    process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    _builtins()
    for kind in list(KINDS.values()):
        if kind.name != "verb":
            load_group(kind.name)


def load_group(kind: str) -> None:
    """Every entry point of one kind's group, registered."""
    import sys
    from importlib.metadata import entry_points

    for ep in entry_points(group=KINDS[kind].group):
        module = sys.modules.get(ep.module)
        if module is not None and ep.attr and not hasattr(module, ep.attr.split(".")[0]):
            continue  # that module is importing us right now (its own entry: it runs alone)
        owner = _owner(ep)
        if (kind, ep.name) in OWNERS and OWNERS[(kind, ep.name)] == owner:
            continue  # this distribution's entry, seen already (two paths to one install)
        try:
            obj = ep.load()
        except Exception as e:
            raise PluginError(f"{kind} {ep.name!r} from {owner} cannot load "
                              f"({ep.value}): {type(e).__name__}: {e}",
                              hint=f"fix or uninstall {owner}") from e
        register(kind, ep.name, obj, owner=owner)


def _owner(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


# -- the kinds of the core and the libraries ------------------------------------------


def _same_name(kind: str, name: str, obj: Any) -> None:
    """An entry point's name must be the name its object carries (one name, two places)."""
    if obj.name != name:
        raise PluginError(f"{kind} entry point {name!r} names a {kind} called {obj.name!r}")


def _teacher_names() -> list[str]:
    from generators.teachers import known_prefixes

    return known_prefixes()


def _add_teacher(name: str, factory: Any) -> None:
    from generators.teachers import register_teacher

    register_teacher(name, factory, needs_model=getattr(factory, "needs_model", True))


def _task_names() -> list[str]:
    from generators.tasks import TASKS

    return list(TASKS)


def _add_task(name: str, task: Any) -> None:
    from generators.tasks import register_task

    task = task() if isinstance(task, type) else task
    _same_name("task", name, task)
    register_task(task)


def _metric_names() -> list[str]:
    from loop.eval.metrics import METRICS

    return list(METRICS)


def _add_metric(name: str, metric: Any) -> None:
    from loop.eval.metrics import register_metric

    _same_name("metric", name, metric)
    register_metric(metric)


def _setup_names() -> list[str]:
    from loop.eval.setups import SETUPS

    return list(SETUPS)


def _add_setup(name: str, setup: Any) -> None:
    from loop.eval.setups import register_setup

    _same_name("setup", name, setup)
    try:
        register_setup(setup)
    except ValueError as e:
        raise PluginError(str(e)) from e


def _kind_names() -> list[str]:
    from loop.kinds import MODEL_KINDS

    return list(MODEL_KINDS)


def _add_kind(name: str, kind: Any) -> None:
    from loop.kinds import register_model_kind

    _same_name("model kind", name, kind)
    register_model_kind(kind)


def _method_names() -> list[str]:
    from retrieval.methods import method_names

    return list(method_names())


def _add_method(name: str, rank: Any) -> None:
    from retrieval.methods import register_method, register_ranker

    register_ranker(name, needs_vector=getattr(rank, "needs_vector", False))(rank)
    register_method(name, {name: 1.0})


def _reranker_names() -> list[str]:
    from retrieval.rerankers import known_prefixes

    return known_prefixes()


def _add_reranker(name: str, factory: Any) -> None:
    from retrieval.rerankers import register_reranker

    register_reranker(name, factory)


def _embedder_names() -> list[str]:
    from retrieval.embedders import known_prefixes

    return known_prefixes()


def _add_embedder(name: str, factory: Any) -> None:
    from retrieval.embedders import register_embedder

    register_embedder(name, factory)


def _student_names() -> list[str]:
    from loop.models.students import LOADERS

    return list(LOADERS)


def _add_student(name: str, loader: Any) -> None:
    from loop.models.students import register_student

    register_student(name, loader, bare=getattr(loader, "bare", False))



for _k in (
    Kind("teacher", "synthloop.teachers", _teacher_names, _add_teacher),
    Kind("task", "synthloop.tasks", _task_names, _add_task),
    Kind("metric", "synthloop.metrics", _metric_names, _add_metric),
    Kind("setup", "synthloop.setups", _setup_names, _add_setup),
    Kind("model_kind", "synthloop.model_kinds", _kind_names, _add_kind),
    Kind("retrieval_method", "synthloop.retrieval", _method_names, _add_method),
    Kind("reranker", "synthloop.rerankers", _reranker_names, _add_reranker),
    Kind("embedder", "synthloop.embedders", _embedder_names, _add_embedder),
    Kind("student", "synthloop.students", _student_names, _add_student),
):  # the CLI adds the "verb" kind (its app), the dashboard the "screen" kind
    register_kind(_k)


def _builtins() -> None:
    """The loop-side built-ins that belong to no library: the local-model teachers, which
    load through the model layer, so a teacher loads exactly as a student does."""
    from loop.models.students import local_teacher

    for prefix, bare in (("hf", False), ("smollm2", True)):
        if prefix not in _teacher_names():  # a test may have registered them already
            factory = local_teacher(prefix)
            factory.needs_model = not bare
            register("teacher", prefix, factory)
