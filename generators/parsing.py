"""Parse a teacher's reply against a task's pydantic schema; say exactly what is wrong."""

from __future__ import annotations

import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class ParseFailure(ValueError):
    """The reply is not valid JSON for the schema; the message goes back in the repair prompt."""


def parse_json(text: str, schema: type[M]) -> M:
    """The JSON object in ``text`` (bare, or in a ```json fence) validated against ``schema``.

    One well-defined extraction, no cascade of regex fallbacks: a reply that is not a JSON
    object is rejected with the reason, and the teacher gets one chance to repair it.
    """
    m = _FENCE.search(text)
    body = (m.group(1) if m else text).strip()
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            raise ParseFailure("the reply contains no JSON object")
        body = body[start:end + 1]
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise ParseFailure(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'object'}: {err['msg']}" for err in e.errors()[:5]
        )
        raise ParseFailure(f"JSON does not match the schema: {problems}") from e
