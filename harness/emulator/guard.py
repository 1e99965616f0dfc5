"""Shape checks shared by the emulator adaptations (``harness/emulator/*``).

An adaptation replaces or wraps a function of the pinned emulator. Before it
does, it checks that what it patches still has the shape it was written for:
the function exists with the exact parameters, the callers still look the
name up at call time (a ``from x import name`` copy would bypass the patch),
and registries that hold the function itself still hold that very function.
Any mismatch raises :class:`AdaptationError` at emulator start, naming the
adaptation, instead of silently not applying.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, cast

from harness.emulator import PINNED_VERSION
from harness.errors import AdaptationError

#: On every function an adaptation installs: the names of the adaptations in it
#: (``functools.wraps`` copies it from the wrapped function, so wrappers accumulate).
MARK = "__harness_adaptations__"


def module(name: str, adaptation: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise AdaptationError(
            f"{adaptation}: cannot import {name} ({exc}); written for ministack {PINNED_VERSION}"
        ) from None


def function(mod: Any, attr: str, params: tuple[str, ...], adaptation: str, *, coroutine: bool = False) -> Any:
    """``mod.attr``, checked to take exactly ``params`` (and to be a coroutine function or not)."""
    fn = getattr(mod, attr, None)
    where = f"{getattr(mod, '__name__', mod)}.{attr}"
    if fn is None or not callable(fn):
        raise AdaptationError(f"{adaptation}: {where} is missing; the adaptation was written for {PINNED_VERSION}")
    try:
        found = tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError) as exc:
        raise AdaptationError(f"{adaptation}: cannot read the signature of {where}: {exc}") from None
    if found != params:
        raise AdaptationError(
            f"{adaptation}: {where} takes ({', '.join(found)}), "
            f"expected ({', '.join(params)}) as in ministack {PINNED_VERSION}"
        )
    if inspect.iscoroutinefunction(fn) != coroutine:
        raise AdaptationError(
            f"{adaptation}: {where} is no longer {'a coroutine' if coroutine else 'a plain'} function"
        )
    return fn


def calls_by_name(mod: Any, caller: str, name: str, adaptation: str) -> None:
    """Refuse if ``mod.caller`` no longer refers to ``name`` (a global or an attribute) in its own code."""
    fn = getattr(mod, caller, None)
    code = getattr(inspect.unwrap(fn), "__code__", None) if callable(fn) else None  # an adapted caller: its original
    if code is None or name not in code.co_names:
        raise AdaptationError(
            f"{adaptation}: {getattr(mod, '__name__', mod)}.{caller} no longer calls {name} by name, "
            f"so the patch would not reach it (written for ministack {PINNED_VERSION})"
        )


def adapted(fn: Any, adaptation: str) -> bool:
    """Whether ``adaptation`` is already in ``fn`` (applied earlier in this process)."""
    return adaptation in getattr(fn, MARK, ())


def mark(fn: Callable[..., Any], adaptation: str) -> Callable[..., Any]:
    setattr(fn, MARK, (*getattr(fn, MARK, ()), adaptation))
    return cast("Callable[..., Any]", fn)


_PROVISIONERS = "ministack.services.cloudformation.provisioners"


def cfn_handler(resource_type: str, operation: str, attr: str, params: tuple[str, ...], adaptation: str) -> Any:
    """CloudFormation's handler ``operation`` of ``resource_type``, checked to be the module's ``attr``.

    MiniStack's ``_RESOURCE_HANDLERS`` holds the functions themselves, so a
    patch must replace both the table's entry and the module global (which
    other handlers call); :func:`replace_cfn_handler` does.
    """
    prov = module(_PROVISIONERS, adaptation)
    fn = function(prov, attr, params, adaptation)
    table = getattr(prov, "_RESOURCE_HANDLERS", None)
    entry = table.get(resource_type) if isinstance(table, dict) else None
    if not isinstance(entry, dict) or entry.get(operation) is not fn:
        raise AdaptationError(
            f"{adaptation}: CloudFormation's {operation} handler of {resource_type} is no longer "
            f"{_PROVISIONERS}.{attr} (written for ministack {PINNED_VERSION})"
        )
    return fn


def replace_cfn_handler(resource_type: str, operation: str, attr: str, new: Callable[..., Any]) -> None:
    prov = importlib.import_module(_PROVISIONERS)
    prov._RESOURCE_HANDLERS[resource_type][operation] = new
    setattr(prov, attr, new)
