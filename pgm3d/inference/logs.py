"""Training-curve logs, as :func:`~pgm3d.inference.fit` callbacks ``cb(epoch, history)``."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from tqdm.auto import tqdm

from pgm3d._io import atomic_write_text

__all__ = ["CSVLog", "EpochSummary", "TensorBoardLog", "training_log"]


class CSVLog:
    """Write ``epoch, bound, kl_weight`` per epoch to a CSV file.

    The whole file is rewritten atomically from the history each epoch, so a resumed run (whose
    history comes from the checkpoint) leaves exactly one row per epoch.

    :param path: the ``.csv`` file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __call__(self, epoch: int, history) -> bool:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["epoch", "bound", "kl_weight"])
        for i, (b, a) in enumerate(zip(history.bound, history.kl_weight, strict=True)):
            w.writerow([i + 1, repr(b), repr(a)])
        atomic_write_text(self.path, buf.getvalue())
        return False


class TensorBoardLog:
    """Log the bound and KL weight per epoch to TensorBoard (needs the ``tensorboard`` package).

    :param logdir: the event-file folder (``tensorboard --logdir`` it).
    """

    def __init__(self, logdir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch raises this when tensorboard is missing
            raise ImportError(
                "TensorBoard logging needs the tensorboard package: pip install tensorboard "
                "(or log to CSV instead)"
            ) from e
        self.writer = SummaryWriter(str(logdir))

    def __call__(self, epoch: int, history) -> bool:
        self.writer.add_scalar("bound", history.bound[-1], epoch + 1)
        self.writer.add_scalar("kl_weight", history.kl_weight[-1], epoch + 1)
        self.writer.flush()
        return False


class EpochSummary:
    """Print one line per epoch (through tqdm, so a progress bar stays intact).

    :param int epochs: the planned number of epochs, for ``epoch 3/50``.
    """

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.start = time.perf_counter()

    def __call__(self, epoch: int, history) -> bool:
        tqdm.write(
            f"epoch {epoch + 1}/{self.epochs}  bound {history.bound[-1]:.4f}  "
            f"kl_weight {history.kl_weight[-1]:g}  steps {history.steps}  "
            f"{time.perf_counter() - self.start:.1f} s"
        )
        return False


def training_log(kind: str | None, out: str | Path):
    """The callback for ``--log csv|tensorboard`` writing into the folder ``out`` (None: no log)."""
    if kind is None or kind == "none":
        return None
    if kind == "csv":
        return CSVLog(Path(out) / "train_log.csv")
    if kind == "tensorboard":
        return TensorBoardLog(Path(out) / "tensorboard")
    raise ValueError(f"unknown training log {kind!r}; choose one of: csv, tensorboard, none")
