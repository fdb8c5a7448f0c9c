"""Factor analysis on complete data: pgm3d's fixed point (Barber 2012, with SQUAREM) and EM
(the thesis's) against scikit-learn's ``FactorAnalysis``, side by side in one run (issue 19).

    python benchmarks/fa_fit.py [--quick]

Digits (the 53 columns that vary) and, when ``frey_rawface.mat`` is found, Frey faces; K = 10
and 30. For each: seconds (median of interleaved rounds), iterations, the per-datum
log-likelihood reached, and pgm3d's time to first reach scikit-learn's final likelihood
(scikit-learn stops on a total increase below 0.01; pgm3d's default tolerance is the same per
row). Set ``OMP_NUM_THREADS=1`` for steadier ratios on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from _timing import interleaved
from sklearn.decomposition import FactorAnalysis as SkFA

from pgm3d.data import open_data
from pgm3d.models import FactorAnalysis


def _sets(quick: bool):
    digits = open_data("digits", seed=0).train.double()
    yield "digits", digits[:, digits.std(0) > 0.05]
    if quick:
        return
    try:
        yield "frey", open_data("frey", seed=0).train.double()
    except (FileNotFoundError, ValueError):
        print("(frey_rawface.mat not found: Frey faces left out)\n")


def main(quick: bool) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(f"{'data':<8}{'K':>4}{'method':>12}{'seconds':>9}{'iters':>7}{'ll/datum':>12}")
    for name, X in _sets(quick):
        data = X.numpy()
        for K in (10, 30):
            fits = {}

            def ours(method, K=K, X=X, fits=fits):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    fits[method] = FactorAnalysis.fit(X, K, method=method, max_iter=3000)

            def theirs(K=K, data=data, fits=fits):
                fits["sklearn"] = SkFA(K, random_state=0).fit(data)

            times = interleaved({"eig": lambda: ours("eig"), "em": lambda: ours("em"),
                                 "sklearn": theirs}, rounds=1 if quick else 3, inner=1)  # fmt: skip
            sk_ll = fits["sklearn"].score(data)
            for method in ("eig", "em", "sklearn"):
                f = fits[method]
                ll = sk_ll if method == "sklearn" else f.log_likelihood(X).mean().item()
                n = f.n_iter_ if method == "sklearn" else f.fit_info.n_iter
                print(f"{name:<8}{K:>4}{method:>12}{statistics.median(times[method]):>9.3f}"
                      f"{n:>7}{ll:>12.4f}")  # fmt: skip
            # pgm3d's fixed point until it first reaches scikit-learn's likelihood
            history = fits["eig"].fit_info.log_likelihood
            reached = next((i for i, v in enumerate(history) if v >= sk_ll), None)
            start = time.perf_counter()
            if reached is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    FactorAnalysis.fit(X, K, max_iter=max(1, reached), tol=-1.0)
            seconds = time.perf_counter() - start
            ratio = seconds / statistics.median(times["sklearn"])
            print(f"{'':<12}fixed point reaches scikit-learn's {sk_ll:.4f} after "
                  f"{reached} iterations, {seconds:.3f} s ({ratio:.2f}x scikit-learn)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
