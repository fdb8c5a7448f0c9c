"""Input checks shared by every public entry point.

Each check raises one :class:`ValueError` (or :class:`TypeError`) that names the offending
argument, so a user sees the mistake at the boundary rather than a shape error deep in a solve.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers

import torch

#: the largest seed every generator pgm3d seeds accepts (numpy's legacy seed is 32-bit)
MAX_SEED = 2**32 - 1

__all__ = [
    "as_data",
    "check_data",
    "check_device",
    "check_float",
    "check_inputs",
    "check_int",
    "check_mask",
    "check_model_matches",
    "check_observed_finite",
    "check_rows_observed",
    "check_seed",
    "inputs_checked",
    "largest_value",
]

_CHECKED = contextvars.ContextVar("pgm3d_inputs_checked", default=False)


@contextlib.contextmanager
def inputs_checked():
    """Within this context :func:`check_inputs` trusts its arguments: for a loop that checked
    all of its data once before it began (``fit`` checks every row up front and a stream's
    batches as they come), so each step does not scan its batch again."""
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def check_data(x, name: str = "x", *, dim: int = 2) -> torch.Tensor:
    """Check that ``x`` is a floating-point tensor of rank ``dim``.

    :param x: the tensor to check.
    :param str name: the argument name used in error messages.
    :param int dim: the required number of dimensions.
    :returns: ``x`` unchanged.
    :raises TypeError: if ``x`` is not a tensor.
    :raises ValueError: if ``x`` has the wrong rank, no rows, or an integer dtype.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if x.dtype in (torch.float16, torch.bfloat16):
        raise TypeError(
            f"{name} is {x.dtype}: pgm3d computes in float32 or float64 (half precision "
            f"underflows the small variances and probabilities these models need); use "
            f"{name}.float()"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    return x


def as_data(x, name: str = "x", *, dtype=None, device=None) -> torch.Tensor:
    """Convert array-likes (numpy arrays, nested lists) to a 2-D float tensor and check it.

    Tensors keep their dtype and device unless ``dtype``/``device`` are given; other inputs
    become ``torch.get_default_dtype()`` tensors.
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name} could not be converted to a tensor: {e}") from e
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
    if dtype is not None or device is not None:
        x = x.to(dtype=dtype, device=device)
    return check_data(x, name)


def check_mask(mask, x: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """Check an observation mask against data ``x``.

    :param mask: bool tensor shaped like ``x``; ``True`` marks an observed entry.
    :param x: the data it masks.
    :returns: the mask on ``x``'s device.
    :raises ValueError: if the mask is not bool, has another shape, or another device.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a bool torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must have dtype torch.bool (True = observed), got {mask.dtype}")
    if mask.shape != x.shape:
        raise ValueError(
            f"{name} must have the shape of the data {tuple(x.shape)}, got {tuple(mask.shape)}"
        )
    if mask.device != x.device:
        raise ValueError(f"{name} is on {mask.device} but the data is on {x.device}")
    return mask


def largest_value(dtype: torch.dtype) -> float:
    """The largest magnitude pgm3d accepts in data of ``dtype``: the fourth root of its
    largest float (about 4.3e9 in float32, 1.2e77 in float64), so that squares, products of
    squares and sums of them (variances, precisions, quadratic forms) stay finite."""
    return torch.finfo(dtype).max ** 0.25


def check_observed_finite(x: torch.Tensor, mask: torch.Tensor | None, name: str = "x") -> None:
    """Raise if an observed entry of ``x`` is NaN, infinite or too large to square safely
    (:func:`largest_value`); missing entries may hold anything. Positions are 1-based."""
    if x.numel() == 0:
        return
    limit = largest_value(x.dtype)
    top = x.abs().amax()  # NaN if any entry is NaN
    if bool(torch.isfinite(top)) and top <= limit:
        return  # fast path: no NaN, no inf, nothing too large
    where = _first_observed(~torch.isfinite(x), mask)
    if where is not None:
        raise ValueError(
            f"{name} has a NaN or infinite value at an observed entry (row {where[0]}, column "
            f"{where[1]}, counting from 1); mark it missing in the mask or fix the data"
        )
    where = _first_observed(x.abs() > limit, mask)
    if where is not None:
        value = x[where[0] - 1, where[1] - 1].item()
        raise ValueError(
            f"{name} has a value of magnitude {value:.3g} (row {where[0]}, column {where[1]}, "
            f"counting from 1): above {limit:.3g}, the largest pgm3d takes in {x.dtype} "
            "(squares of squares must stay finite); rescale (standardise) the data or use float64"
        )


def _first_observed(flags: torch.Tensor, mask: torch.Tensor | None) -> tuple[int, int] | None:
    """The 1-based (row, column) of the first flagged entry that is observed, if any."""
    if mask is not None:
        flags = flags & mask
    if not bool(flags.any()):
        return None
    row, col = (int(i) + 1 for i in flags.nonzero()[0])
    return row, col


def check_rows_observed(mask: torch.Tensor | None, name: str = "x") -> None:
    """Raise if a row has no observed entry: it carries no information to train on (and its
    likelihood is not scored: :func:`~pgm3d.inference.log_likelihood` gives NaN)."""
    if mask is None:
        return
    empty = ~mask.reshape(mask.shape[0], -1).any(-1)
    if bool(empty.any()):
        rows = (empty.nonzero()[:, 0] + 1).tolist()
        shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        what = "every row" if len(rows) == mask.shape[0] else f"{len(rows)} row(s) ({shown})"
        raise ValueError(
            f"{name}: {what} of {mask.shape[0]} have no observed entry (rows counted from 1); "
            "such rows carry nothing to train on: drop them"
        )


def check_inputs(model, x, mask=None, name: str = "x"):
    """The checks every entry point runs on ``(model, x, mask)``: ``x`` a 2-D float tensor, the
    mask bool and shaped like it, both matching the model's dtype, device and width, and no
    NaN or inf at an observed entry. Returns ``(x, mask)``; inside :func:`inputs_checked`,
    at once."""
    if _CHECKED.get():
        return x, mask
    check_data(x, name)
    if mask is not None:
        check_mask(mask, x)
    if model is not None:
        check_model_matches(model, x, name)
    check_observed_finite(x, mask, name)
    return x, mask


def check_model_matches(model, x: torch.Tensor, name: str = "x") -> None:
    """Raise if ``x`` does not match the model's data dimension, dtype or device."""
    ref = next(iter(model.parameters()), None)
    if ref is not None:
        if ref.device != x.device:
            raise ValueError(
                f"the model's parameters are on {ref.device} but {name} is on {x.device}; "
                f"move one of them, e.g. model.to({str(x.device)!r})"
            )
        if ref.dtype != x.dtype:
            raise ValueError(
                f"the model's parameters are {ref.dtype} but {name} is {x.dtype}; "
                f"convert one of them, e.g. model.to({x.dtype})"
            )
    data_dim = getattr(model, "data_dim", None)
    if data_dim is not None and x.shape[-1] != data_dim:
        raise ValueError(
            f"{name} has {x.shape[-1]} columns but the model's data dimension is {data_dim}"
        )


# ---------------------------------------------------------------------------- options
def check_int(value, name: str, *, low: int | None = 1, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``; booleans and non-integral floats are refused
    (``epochs = 1.5`` or ``true`` in a config must not become one epoch).

    :raises TypeError: not an integer.
    :raises ValueError: out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {_range(low, high, False, False)}, got {value}")
    return value


def check_float(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (``*_open``: the
    end is excluded). NaN and infinities are refused whatever the range.

    :raises TypeError: not a real number.
    :raises ValueError: not finite or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        raise ValueError(f"{name} must be {_range(low, high, low_open, high_open)}, got {value}")
    return value


def _range(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"


def check_seed(seed, name: str = "seed") -> int:
    """A seed every generator accepts: an integer in ``[0, 2**32 - 1]``."""
    return check_int(seed, name, low=0, high=MAX_SEED)


def check_device(device, name: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device` that exists on this machine.

    :raises ValueError: not a device name torch knows (``"foo"``), or CUDA/MPS asked for where
        there is none (rather than torch's assertion deep inside the first tensor move).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"{name} {device!r} is not a torch device; use cpu, cuda or cuda:N"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {device!r}: no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} {device!r}: no MPS device is available")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{name} {device!r}: pgm3d runs on cpu, cuda or mps devices")
    return dev
