"""Deprecated keyword aliases of the public API (one argument vocabulary, old names still accepted).

The Python API uses one name per concept (ARCHITECTURE.md, "Argument vocabulary"):
``data``, ``out``, ``model``, ``country``, ``seed``, ``replicates``, ``draws``, ``by``.
Functions whose arguments were renamed accept the old keyword for a while through
:func:`renamed_kwargs`, with a ``DeprecationWarning`` naming the new one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Accept ``old=value`` keywords for renamed arguments (``@renamed_kwargs(n_boot="replicates")``).

    Passing both the old and the new name is an error.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__name__}() got both {old!r} (deprecated) and {new!r}")
                    warnings.warn(f"{fn.__name__}(): {old!r} is deprecated, use {new!r}",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        wrapper.__renamed_kwargs__ = dict(renames)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
