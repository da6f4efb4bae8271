"""Name registry: build integrands from strings such as ``"camel:dim=8,alpha=0.1"``.

A specification is a registered name, optionally followed by ``:`` and comma-separated
``key=value`` pairs. Values are parsed with ``int()`` and, failing that, ``float()``; nothing is
ever evaluated.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from .base import Integrand

__all__ = ["get", "names", "parse_spec", "register"]

_REGISTRY: dict[str, type[Integrand]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

T = TypeVar("T", bound=type[Integrand])


def register(name: str) -> Callable[[T], T]:
    """Class decorator adding an :class:`Integrand` subclass to the registry.

    Arguments:
        name: the registry name (lower case letters, digits and underscores).

    Returns:
        A decorator that sets ``cls.name = name``, records the class and returns it unchanged.

    Raises:
        ValueError: the name is malformed or already taken by another class.

    Example:
        >>> import integrands
        >>> @integrands.register("my_constant")
        ... class Constant(integrands.Integrand):
        ...     def __init__(self, dim: int = 1) -> None:
        ...         super().__init__(dim)
        ...     def _compute_exact(self):
        ...         return 1.0, 0.0
        ...     def _evaluate(self, x, ops):
        ...         return x[:, 0] * 0 + 1
        >>> integrands.get("my_constant:dim=3").exact
        1.0
    """
    if not _NAME.match(name):
        raise ValueError(f"invalid integrand name {name!r}: use [a-z][a-z0-9_]*")

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Integrand)):
            raise TypeError(f"register({name!r}) expects an Integrand subclass, got {cls!r}")
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"integrand name {name!r} is already used by {known.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def names() -> list[str]:
    """List the registered integrand names.

    Returns:
        The names, sorted alphabetically.

    Example:
        >>> import integrands
        >>> "camel" in integrands.names()
        True
    """
    return sorted(_REGISTRY)


def _parse_value(key: str, text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"parameter {key!r}: {text!r} is neither an int nor a float") from None
    if not math.isfinite(value):
        raise ValueError(f"parameter {key!r}: {text!r} is not a finite number")
    return value


def parse_spec(spec: str) -> tuple[str, dict[str, int | float]]:
    """Split ``"name:key=value,..."`` into the name and a dict of numbers.

    Arguments:
        spec: the specification string.

    Returns:
        ``(name, params)`` with each value an ``int`` when ``int()`` accepts it, else a float.

    Raises:
        ValueError: a pair is not ``key=value``, a key repeats, or a value is not a number.

    Example:
        >>> parse_spec("camel:dim=8,alpha=0.1")
        ('camel', {'dim': 8, 'alpha': 0.1})
    """
    if not isinstance(spec, str):
        raise ValueError(f"integrand specification must be a string, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, int | float] = {}
    if rest.strip():
        for item in rest.split(","):
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or not key.isidentifier():
                raise ValueError(f"malformed parameter {item!r} in {spec!r}: expected key=value")
            if key in params:
                raise ValueError(f"parameter {key!r} given twice in {spec!r}")
            params[key] = _parse_value(key, text)
    return name.strip(), params


def _accepted(cls: type[Integrand]) -> tuple[list[str], bool]:
    """Keyword parameters of ``cls.__init__`` and whether it takes ``**kwargs``."""
    signature = inspect.signature(cls.__init__)
    keys: list[str] = []
    var_kw = False
    for index, param in enumerate(signature.parameters.values()):
        if index == 0:
            continue  # self
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            keys.append(param.name)
    return keys, var_kw


def get(spec: str, **kwargs: Any) -> Integrand:
    """Build a registered integrand from a specification string and/or keywords.

    Arguments:
        spec: ``"name"`` or ``"name:key=value,key=value"``.
        **kwargs: more parameters (may be of any type, e.g. vectors for the Genz family);
            a key may not appear both here and in ``spec``.

    Returns:
        The integrand instance.

    Raises:
        ValueError: unknown name or parameter (the message lists the valid choices), or a
            parameter value the integrand rejects.

    Example:
        >>> import integrands
        >>> integrands.get("camel:dim=8,alpha=0.1")
        camel(dim=8, alpha=0.1)
        >>> integrands.get("camel", dim=4)
        camel(dim=4, alpha=0.2)
    """
    name, params = parse_spec(spec)
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown integrand {name!r}; valid names: {', '.join(names())}")
    clash = sorted(set(params) & set(kwargs))
    if clash:
        raise ValueError(f"parameter(s) {clash} given both in {spec!r} and as keywords")
    params.update(kwargs)
    keys, var_kw = _accepted(cls)
    unknown = sorted(set(params) - set(keys))
    if unknown and not var_kw:
        raise ValueError(
            f"unknown parameter(s) {unknown} for integrand {name!r}; "
            f"valid parameters: {', '.join(keys)}"
        )
    return cls(**params)
