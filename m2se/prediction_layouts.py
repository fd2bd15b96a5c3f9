"""Other tools' prediction-file layouts, read as the ms-swift 2.x one (``query``, ``response``, ``label``).

- ms-swift 2.x ``swift infer`` and ``evaluate.py``'s own ``predictions/<task>.jsonl``: ``query``,
  ``response``, ``label`` (and ``images``/``videos``/``media``); read as they are.
- ms-swift 3.x ``swift infer``: the conversation in ``messages`` (``{"role", "content"}`` turns; the
  query is the last user turn, media tags such as ``<image>`` included), the answer in ``response``,
  the gold in ``labels`` (or, in releases that write no ``labels`` key, the closing assistant turn; a
  null ``labels`` is no gold: the closing turn is then the model's answer); media in ``images``/``videos`` as
  paths or ``{"path": ...}`` objects.
- LLaMA-Factory ``generated_predictions.jsonl``: ``prompt`` (the whole templated input, decoded),
  ``predict``, ``label``. The query is the prompt; an ECPE query is cut from it by its template.
"""

from __future__ import annotations

import re

from m2se.templates import ECPE_HEAD, ECPE_TAIL

LAYOUTS = (
    "ms-swift 2.x / m2se (query, response, label)",
    "ms-swift 3.x (messages, response, labels)",
    "LLaMA-Factory (prompt, predict, label)",
)
_MEDIA_TAG = re.compile(r"^(\s*<(image|video|audio)>\s*)+")


class LayoutError(ValueError):
    """A row none of the known layouts fits."""


def as_swift2(item: dict) -> dict:
    """``item`` in the ms-swift 2.x layout (a new dict; the item is left as it was). LayoutError when
    no known layout fits, naming the keys it has and the layouts known."""
    if "messages" in item and "response" in item:
        return _swift3(item)
    if "prompt" in item and "predict" in item:
        return _llamafactory(item)
    if "response" in item or "label" in item or "query" in item:
        return item
    keys = ", ".join(sorted(map(str, item))[:8]) or "none"
    raise LayoutError(f"no known prediction layout fits keys ({keys}); known: {'; '.join(LAYOUTS)}")


def _swift3(item: dict) -> dict:
    messages = item["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise LayoutError("'messages' must be a list of {role, content} turns")
    users = [m for m in messages if m.get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), str):
        raise LayoutError("'messages' has no user turn with text content")
    row = {k: v for k, v in item.items() if k not in ("messages", "labels")}
    row["query"] = _MEDIA_TAG.sub("", users[-1]["content"])
    label = item.get("labels")
    # Early 3.x releases keep the dataset's conversation, gold answer last, and write no labels key;
    # later ones move the gold to labels (null: none) and end messages with the model's own answer.
    if "labels" not in item and messages[-1].get("role") == "assistant":
        label = messages[-1].get("content")
    if label is not None:
        row["label"] = label
    for key in ("images", "videos"):
        if isinstance(row.get(key), list):
            row[key] = [m.get("path") if isinstance(m, dict) else m for m in row[key]]
    return row


def _llamafactory(item: dict) -> dict:
    prompt = item["prompt"]
    row = {k: v for k, v in item.items() if k not in ("prompt", "predict")}
    if isinstance(prompt, str) and ECPE_HEAD[:60] in prompt and ECPE_TAIL in prompt:
        # The ECPE query is known by its template's head and tail; the chat template around it is not.
        prompt = prompt[prompt.index(ECPE_HEAD[:60]) : prompt.rindex(ECPE_TAIL) + len(ECPE_TAIL)]
    row["query"], row["response"] = prompt, item["predict"]
    return row
