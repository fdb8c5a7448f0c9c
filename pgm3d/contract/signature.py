"""How to call a user's model or guide: which parameter takes the data, which the mask, which
the context, read from its signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from pgm3d.contract.structure import ContractError

__all__ = ["POSITIONAL", "Call", "Signature"]

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Signature:
    """How to call one user function: which parameter takes the data, the mask, the context."""

    def __init__(self, fn: Callable, role: str):
        self.fn, self.role = fn, role
        target = fn.forward if isinstance(fn, nn.Module) else fn
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            raise ContractError(f"cannot read the signature of the {role} {fn!r}") from None
        self.text = f"{role}{sig}"
        params = sig.parameters.values()
        self.params = {p.name: p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        self.var_kw = any(p.kind == p.VAR_KEYWORD for p in params)

    def accepts(self, name: str) -> bool:
        return name in self.params or self.var_kw

    def resolve(self, data_arg: str | None, context: tuple[str, ...], strict: bool) -> Call:
        """Decide the call. ``strict`` (the model): ``data_arg`` and every context name must
        be arguments; otherwise (the guide) the data goes to ``data_arg`` if it is an
        argument, else to the first positional one, and context it does not take is left out.
        """
        if data_arg is None or data_arg not in self.params:
            free = [
                n
                for n, p in self.params.items()
                if p.kind in POSITIONAL and n != "mask" and n not in context
            ]
            if data_arg is not None and strict:
                if not self.var_kw:
                    raise ContractError(f"{self.text} has no argument {data_arg!r} (data_arg)")
            elif free:
                data_arg = free[0]
            elif data_arg is None or not self.var_kw:
                raise ContractError(
                    f"{self.text} has no argument for the data: pgm3d passes the data as "
                    "the first positional argument that is not 'mask' or a context name, "
                    "or as the one named by data_arg="
                )
        if data_arg in context:
            raise ContractError(f"{data_arg!r} is both the data argument and a context name")
        passed = []
        for name in context:
            if self.accepts(name):
                passed.append(name)
            elif strict:
                raise ContractError(
                    f"{self.text} has no argument {name!r} for the context of that name"
                )
        mask = "mask" in self.params and data_arg != "mask"
        given = {data_arg, *passed, *(["mask"] if mask else [])}
        missing = [n for n, p in self.params.items() if p.default is p.empty and n not in given]
        if missing:
            raise ContractError(
                f"{self.text} needs argument(s) {missing}, which pgm3d does not fill: pass "
                f"them as context (context={{{missing[0]!r}: tensor}}, one row per data row) "
                "or give them defaults"
            )
        positional = tuple(n for n, p in self.params.items() if p.kind == p.POSITIONAL_ONLY)
        return Call(self.fn, data_arg, mask, tuple(passed), positional)


@dataclass(frozen=True)
class Call:
    fn: Callable
    data_arg: str
    mask: bool
    context: tuple[str, ...]
    positional: tuple[str, ...]

    def __call__(self, x, mask, context: dict):
        values = {self.data_arg: x, **{n: context[n] for n in self.context}}
        if self.mask:
            values["mask"] = mask
        args = [values.pop(n) for n in self.positional if n in values]
        return self.fn(*args, **values)
