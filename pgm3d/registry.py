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

    ``registry.register("name", **info)`` is a decorator; ``registry["name"]`` looks an entry
    up and, for an unknown name, raises a :class:`ValueError` that lists the valid ones (and
    the closest, for a typo). ``info`` is what the command line, the benchmarks and the report
    need to know of an entry without keeping their own lists (:meth:`info`).

    :param str kind: what the entries are, used in error messages (e.g. ``"completion method"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._info: dict[str, dict] = {}

    def register(self, name: str, **info) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            self._info[name] = dict(info)
            return obj

        return decorator

    def unregister(self, name: str) -> None:
        """Remove an entry (a test's or a notebook's temporary one)."""
        self[name]
        del self._entries[name], self._info[name]

    def info(self, name: str) -> dict:
        """What was registered with ``name`` besides the object (a copy)."""
        self[name]
        return dict(self._info[name])

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
