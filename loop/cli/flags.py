"""CLI options made from a stage's config model: one help text (the field's description), the
default shown, the choices listed, and nothing written twice.

    @app.command()
    @config_flags(TrainConfig, skip={"memory_budget"})
    def train(overrides: dict, workspace: WorkspaceOpt = DEFAULT_WS, ...) -> None:
        cfg = resolve(TrainConfig, file_table, **overrides)

Every field of the model becomes ``--field-name`` (booleans ``--x/--no-x``, lists a
comma-separated string, ``Literal`` fields and fields named in the model's ``choices`` a
fixed set); a flag left out is ``None`` in ``overrides``, so the config file's value (or the
default) stands. Dict-valued fields stay in the config file, but for ``source_weights``
(its flag is the repeatable ``--prefer GLOB[=W]``, :func:`prefer_option`) and the eval's
``serve`` (the repeatable ``--serve SETUP=openai:NAME@URL``, :func:`serve_option`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, get_args

import typer

from loop.cli.helptext import placeholder
from loop.config import StageConfig, field_choices, is_list_type, is_simple_type, strip_optional


def config_flags(model: type[StageConfig], *, skip: Iterable[str] = (),
                 only: Iterable[str] | None = None,
                 decls: dict[str, tuple[str, ...]] | None = None,
                 panel: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a verb whose first parameter is ``overrides``: it receives ``{field: value or
    None}`` for every generated option (the fields in ``only``, else all but ``skip``).
    ``decls`` renames flags (``{"k": ("-k", "--k")}``); ``panel`` groups them in ``--help``."""
    skip, decls = set(skip), decls or {}
    if only is not None:
        skip |= set(model.model_fields) - set(only)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values()
               if p.name != "overrides"]
        made = {name: option(model, name, decls.get(name), panel)
                for name, f in model.model_fields.items()
                if name not in skip and is_simple_type(f.annotation)}

        @functools.wraps(fn)
        def verb(**kwargs: Any) -> Any:
            overrides = {name: _value(model, name, kwargs.pop(name)) for name in made}
            return fn(overrides, **kwargs)

        params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                    annotation=ann) for name, ann in made.items()]
        verb.__signature__ = inspect.Signature(params + [p.replace(kind=p.KEYWORD_ONLY)
                                                         for p in own])
        verb.__annotations__ = {p.name: p.annotation for p in verb.__signature__.parameters.values()}
        del verb.__wrapped__  # typer must read the new signature, not fn's
        return verb

    return decorate


def option(model: type[StageConfig], name: str, decls: tuple[str, ...] | None = None,
           panel: str | None = None) -> Any:
    """The ``Annotated[...]`` type of one field's option."""
    f = model.model_fields[name]
    base = strip_optional(f.annotation)
    flag = "--" + name.replace("_", "-")
    choices = field_choices(model, name)
    metavar = None
    if base is bool:
        kind: Any = bool
        # both ways: a config file's `x = true` can be turned off for one run
        decls = decls or (f"{flag}/--no-{flag[2:]}",)
    elif is_list_type(base):
        kind = str
        item = get_args(base)[0] if get_args(base) else str
        metavar = placeholder(getattr(item, "__name__", "str")) + ",..."
    elif choices:
        kind = Literal[tuple(choices)]  # typer lists them and refuses others
    else:
        kind = base
    help_text = f.description or ""
    if is_list_type(base):
        help_text += " Comma-separated" + (f"; choices: {', '.join(choices)}." if choices else ".")
    default = f.get_default(call_default_factory=True)
    if default not in (None, "", []):  # an empty default is no default to show
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        help_text += f" [default: {shown}]"
    info = typer.Option(*(decls or (flag,)), help=help_text, rich_help_panel=panel,
                        metavar=metavar, show_default=False)
    return Annotated[kind | None, info]


def _value(model: type[StageConfig], name: str, value: Any) -> Any:
    if value is None:
        return None
    if is_list_type(strip_optional(model.model_fields[name].annotation)):
        items = [v.strip() for v in str(value).split(",") if v.strip()]
        choices = field_choices(model, name)  # read now: a plugin may have registered more
        bad = [v for v in items if choices and v not in choices]
        if bad:
            raise typer.BadParameter(f"{', '.join(map(repr, bad))} is not one of "
                                     f"{', '.join(map(repr, choices))}.",
                                     param_hint="--" + name.replace("_", "-"))
        return items
    return value


PREFER_WEIGHT = 2.0  # --prefer GLOB without =W


def prefer_option(model: type[StageConfig]) -> Any:
    """The repeatable ``--prefer GLOB[=W]`` option that sets ``model``'s ``source_weights``
    (a dict, so ``config_flags`` makes no flag for it); its help is the field's."""
    help_text = (f"{model.model_fields['source_weights'].description} "
                 f"Repeatable; W defaults to {PREFER_WEIGHT:g}.")
    return Annotated[list[str] | None, typer.Option(
        "--prefer", metavar="GLOB[=W]", help=help_text, show_default=False)]


def source_weights(prefer: list[str] | None) -> dict[str, float] | None:
    """``--prefer`` values as ``source_weights``; None when the flag was not given (the
    config's value stands)."""
    if not prefer:
        return None
    out: dict[str, float] = {}
    for item in prefer:
        glob, _, text = item.rpartition("=") if "=" in item else (item, "", "")
        try:
            weight = float(text) if text else PREFER_WEIGHT
        except ValueError:
            weight = float("nan")
        if not glob.strip() or not weight > 0 or weight == float("inf"):
            raise typer.BadParameter(f"'{item}' is not GLOB or GLOB=W with a number W > 0",
                                     param_hint="--prefer")
        out[glob] = weight
    return out


def serve_option(model: type[StageConfig]) -> Any:
    """The repeatable ``--serve SETUP=openai:NAME@URL`` option that sets ``model``'s ``serve``
    (a dict, so ``config_flags`` makes no flag for it); its help is the field's."""
    help_text = (f"{model.model_fields['serve'].description} Repeatable; given, it replaces "
                 "the config file's serve table.")
    return Annotated[list[str] | None, typer.Option(
        "--serve", metavar="SETUP=openai:NAME@URL", help=help_text, show_default=False)]


def served_setups(serve: list[str] | None) -> dict[str, str] | None:
    """``--serve`` values as the ``serve`` mapping; None when the flag was not given (the
    config's value stands). The specs themselves are checked by the config."""
    if not serve:
        return None
    out: dict[str, str] = {}
    for item in serve:
        setup, sep, spec = item.partition("=")
        if not sep or not setup.strip() or not spec.strip():
            raise typer.BadParameter(f"'{item}' is not SETUP=openai:NAME@URL", param_hint="--serve")
        out[setup.strip()] = spec.strip()
    return out
