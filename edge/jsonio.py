"""JSON in and out of the box: strict when written (no NaN or Infinity), bounded when read."""
from __future__ import annotations

import json
import math
from typing import IO, Any

MAX_DEPTH = 32  # the deepest document the box reads (status, requests, state: under 6)
MAX_NODES = 2_000_000  # more lists, mappings and values than any file the box reads holds


def strict(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by None: what JSON can say."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """json.dumps that never writes NaN or Infinity (they are not JSON; a browser's
    JSON.parse refuses the whole document)."""
    return json.dumps(strict(obj), allow_nan=False, **kwargs)


def dump(obj: Any, f: IO[str], **kwargs: Any) -> None:
    json.dump(strict(obj), f, allow_nan=False, **kwargs)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and mappings nest in `obj` (a scalar: 0), without recursion; stops
    at limit + 1, which it also returns for more than MAX_NODES items (YAML's aliases can
    make a document refer to itself, or make a small file a huge tree)."""
    deepest, stack, seen = 0, [(obj, 1)], 0
    while stack:
        item, level = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return limit + 1
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads for outside input: ValueError (one line) for anything nested deeper than
    `max_depth`, for NaN/Infinity, and for what is not JSON at all."""
    try:
        obj = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nested too deeply (more than {max_depth} levels)") from None
    if depth(obj, max_depth) > max_depth:
        raise ValueError(f"nested too deeply (more than {max_depth} levels)")
    return obj
