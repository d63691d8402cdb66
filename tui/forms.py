"""Dashboard forms made from a stage's config model, like the CLI's flags (``loop.cli.flags``):
the field's description is the tooltip, its default the starting value, its choices a Select,
a boolean a Checkbox. Values come back parsed (numbers, comma-separated lists; empty means
unset) and go through the same ``resolve`` as the CLI, so a bad value is the same
ConfigError naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select

from loop.config import StageConfig, field_choices, is_list_type, resolve, strip_optional
from loop.errors import ConfigError


def widget_id(prefix: str, name: str) -> str:
    return f"{prefix}-{name.replace('_', '-')}"


def field_widgets(model: type[StageConfig], prefix: str, name: str, label: str | None = None,
                  placeholder: str = "") -> Iterator[Widget]:
    """The label and the input of one field (a Checkbox carries its own label)."""
    f = model.model_fields[name]
    default = f.get_default(call_default_factory=True)
    tip = f.description or ""
    if default is True or default is False:
        box = Checkbox(label or name.replace("_", " "), value=default, id=widget_id(prefix, name),
                       compact=True)
        box.tooltip = tip
        yield box
        return
    yield Label(label or name.replace("_", " "), classes="form-label")
    choices = field_choices(model, name)
    if choices and not isinstance(default, list):
        widget: Widget = Select([(c, c) for c in choices], value=default, allow_blank=False,
                                id=widget_id(prefix, name), compact=True)
    else:
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        widget = Input("" if shown is None else str(shown), id=widget_id(prefix, name),
                       placeholder=placeholder or ("default" if shown is None else ""),
                       compact=True)
    widget.tooltip = tip
    yield widget


def form_values(screen: Widget, model: type[StageConfig], prefix: str,
                names: list[str]) -> dict[str, Any]:
    """The typed value of each named field's widget (None where a text box is empty)."""
    out: dict[str, Any] = {}
    for name in names:
        w = screen.query_one(f"#{widget_id(prefix, name)}")
        if isinstance(w, Checkbox):
            out[name] = w.value
        elif isinstance(w, Select):
            out[name] = str(w.value)
        else:
            out[name] = _parse(model, name, w.value if isinstance(w, Input) else "")
    return out


def form_config(screen: Widget, model: type[StageConfig], prefix: str, names: list[str],
                **extra: Any) -> StageConfig:
    """The stage config of the form: defaults, then the fields' values, then ``extra``."""
    return resolve(model, None, **{**form_values(screen, model, prefix, names), **extra})


def _parse(model: type[StageConfig], name: str, text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    base = strip_optional(model.model_fields[name].annotation)
    if is_list_type(base):
        return [t.strip() for t in text.split(",") if t.strip()]
    if base in (int, float):
        try:
            return base(text)
        except ValueError:
            raise ConfigError(f"{name.replace('_', ' ')}: '{text}' is not a number") from None
    return text
