"""Name -> object registries, so models, back ends and datasets are chosen by one string."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "did_you_mean"]


def did_you_mean(name, options: Iterable[str]) -> str:
    """`` (did you mean 'vae'?)`` for the closest of ``options`` to a mistyped ``name``, or
    ``""`` when none is close (difflib's ratio >= 0.6)."""
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    """A named collection of objects of one kind.

    ``registry.register("name")`` is a decorator; ``registry["name"]`` looks an entry up and,
    for an unknown name, raises a :class:`ValueError` that lists the valid ones.

    :param str kind: what the entries are, used in error messages (e.g. ``"completion method"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; choose one "
                f"of: {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)
