"""Dataset rows to the formats fine-tuning tools read.

- ``messages``: ``{"messages": [...]}`` per line (TRL, axolotl ``chat_template``, the OpenAI
  fine-tuning API)
- ``alpaca``: ``{"instruction", "input", "output", "system", "history"}`` (LLaMA-Factory)
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt"|"system", "value"}]}`` (axolotl,
  LLaMA-Factory)
"""

from __future__ import annotations

from typing import Any

FORMATS = ("messages", "alpaca", "sharegpt", "parquet")
_SHAREGPT_ROLE = {"user": "human", "assistant": "gpt", "system": "system"}


def to_messages(row: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}


def to_alpaca(row: dict[str, Any]) -> dict[str, Any]:
    msgs = list(row["messages"])
    system = msgs.pop(0)["content"] if msgs and msgs[0]["role"] == "system" else ""
    pairs = [(msgs[i]["content"], msgs[i + 1]["content"]) for i in range(0, len(msgs) - 1, 2)]
    *history, (instruction, output) = pairs
    out = {"instruction": instruction, "input": "", "output": output, "system": system,
           "history": [list(p) for p in history]}
    if row.get("rejected"):
        out["rejected"] = row["rejected"]
    return out


def to_sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    return {"conversations": [{"from": _SHAREGPT_ROLE[m["role"]], "value": m["content"]}
                              for m in row["messages"]]}


CONVERTERS = {"messages": to_messages, "alpaca": to_alpaca, "sharegpt": to_sharegpt}
