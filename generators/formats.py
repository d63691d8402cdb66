"""Answer formats: a spec an answer must follow, checked the same way in generation (a filter
on the teacher's answers) and in eval (the ``format`` score).

A spec is a JSON object with any of these keys; an answer complies when it meets all of them:

- ``max_words``: at most this many words;
- ``regex``: the whole answer matches this regular expression (``re.fullmatch``, DOTALL);
- ``json_schema``: the answer is a JSON object (alone, or in a fenced block) valid under this
  JSON schema (checked with the ``jsonschema`` package);
- ``headings``: every one of these headings is a line of the answer (``# Heading``,
  ``Heading:`` or the bare heading; case-insensitive);
- ``bullets``: exactly this many bullet lines (``-``, ``*``, ``•`` or ``1.``), or
  ``min_bullets`` / ``max_bullets`` for a range.

On the command line a spec is that JSON object or ``KEY=VALUE`` pairs separated by
semicolons (``max_words=12``, ``bullets=3;headings=Summary``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

KEYS = ("max_words", "regex", "json_schema", "headings", "bullets", "min_bullets", "max_bullets")
_INT_KEYS = ("max_words", "bullets", "min_bullets", "max_bullets")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+\S")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class FormatError(ValueError):
    """A spec that cannot be used: an unknown key, a bad value, a broken regex or schema."""


def parse_spec(value: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A validated spec from a mapping, a JSON object string or ``KEY=VALUE;...`` pairs."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as e:
                raise FormatError(f"format spec is not valid JSON: {e}") from None
        else:
            value = dict(_pair(p) for p in text.split(";") if p.strip())
    if not isinstance(value, Mapping):
        raise FormatError("a format spec is a JSON object such as {\"max_words\": 12}")
    spec = dict(value)
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise FormatError(f"unknown format key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    for key in _INT_KEYS:
        if key in spec:
            try:
                spec[key] = int(spec[key])
            except (TypeError, ValueError):
                raise FormatError(f"format key {key} needs a whole number, not {spec[key]!r}") from None
            if spec[key] < 0 or (key == "max_words" and spec[key] == 0):
                raise FormatError(f"format key {key} must be positive")
    if "headings" in spec:
        h = spec["headings"]
        if not isinstance(h, str | list | tuple):
            raise FormatError("format key headings needs a list of headings (or a comma-separated string)")
        spec["headings"] = [s.strip() for s in (h.split(",") if isinstance(h, str) else h)
                            if str(s).strip()]
    if "regex" in spec:
        if not isinstance(spec["regex"], str):
            raise FormatError("format key regex needs a string")
        try:
            re.compile(spec["regex"])
        except re.error as e:
            raise FormatError(f"format regex {spec['regex']!r} does not compile: {e}") from None
    if "json_schema" in spec:
        schema = spec["json_schema"]
        if isinstance(schema, str):
            try:
                schema = spec["json_schema"] = json.loads(schema)
            except ValueError as e:
                raise FormatError(f"format json_schema is not JSON: {e}") from None
        _validator(json.dumps(schema, sort_keys=True))
    return spec


def _pair(text: str) -> tuple[str, Any]:
    key, sep, val = text.partition("=")
    if not sep:
        raise FormatError(f"format spec part {text.strip()!r} is not KEY=VALUE")
    key, val = key.strip(), val.strip()
    if key == "json_schema":
        try:
            return key, json.loads(val)
        except ValueError as e:
            raise FormatError(f"format json_schema is not JSON: {e}") from None
    return key, val


@functools.cache
def _validator(schema_json: str):
    import jsonschema

    schema = json.loads(schema_json)
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise FormatError(f"format json_schema is not a valid JSON schema: {e.message}") from None
    return cls(schema)


def answer_json(text: str) -> Any:
    """The JSON value an answer holds: the whole text, a fenced block, or the first object."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except ValueError:
            continue
    raise ValueError("no JSON object in the answer")


def violations(answer: str, spec: Mapping[str, Any]) -> list[str]:
    """What the answer breaks of the spec (empty: it complies)."""
    text = answer.strip()
    out = []
    if "max_words" in spec and len(text.split()) > spec["max_words"]:
        out.append(f"{len(text.split())} words > {spec['max_words']}")
    if "regex" in spec and not re.fullmatch(spec["regex"], text, re.DOTALL):
        out.append("does not match the regex")
    if "json_schema" in spec:
        try:
            data = answer_json(text)
            errors = list(_validator(json.dumps(spec["json_schema"], sort_keys=True)).iter_errors(data))
            if errors:
                out.append(f"JSON fails the schema: {errors[0].message}")
        except ValueError:
            out.append("no JSON object")
    lines = [ln.strip() for ln in text.splitlines()]
    if spec.get("headings"):
        have = {ln.lstrip("#").strip().rstrip(":").strip().lower() for ln in lines}
        missing = [h for h in spec["headings"] if h.lower().rstrip(":") not in have]
        if missing:
            out.append(f"missing heading(s) {', '.join(missing)}")
    bullets = sum(bool(_BULLET.match(ln)) for ln in text.splitlines())
    if "bullets" in spec and bullets != spec["bullets"]:
        out.append(f"{bullets} bullets, not {spec['bullets']}")
    if "min_bullets" in spec and bullets < spec["min_bullets"]:
        out.append(f"{bullets} bullets < {spec['min_bullets']}")
    if "max_bullets" in spec and bullets > spec["max_bullets"]:
        out.append(f"{bullets} bullets > {spec['max_bullets']}")
    return out


def complies(answer: str, spec: Mapping[str, Any]) -> bool:
    return not violations(answer, spec)


def describe(spec: Mapping[str, Any]) -> str:
    """The spec in words, for a teacher's prompt."""
    parts = []
    if "max_words" in spec:
        parts.append(f"at most {spec['max_words']} words")
    if "bullets" in spec:
        parts.append(f"exactly {spec['bullets']} bullet points, one per line starting with '- '")
    if "min_bullets" in spec or "max_bullets" in spec:
        lo, hi = spec.get("min_bullets"), spec.get("max_bullets")
        rng = (f"{lo} to {hi}" if lo is not None and hi is not None
               else f"at least {lo}" if lo is not None else f"at most {hi}")
        parts.append(f"{rng} bullet points, one per line starting with '- '")
    if spec.get("headings"):
        parts.append("these headings, each on its own line: " + ", ".join(spec["headings"]))
    if "regex" in spec:
        parts.append(f"text matching the regular expression {spec['regex']}")
    if "json_schema" in spec:
        parts.append("a JSON object valid under this JSON schema: "
                     + json.dumps(spec["json_schema"], ensure_ascii=False))
    return "Every answer must have " + "; ".join(parts) + "."
