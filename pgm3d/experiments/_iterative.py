"""scikit-learn's ``IterativeImputer``, imputing held-out rows without keeping its estimators.

Imported lazily by :mod:`pgm3d.experiments.imputation` (it imports scikit-learn).
"""

from __future__ import annotations

import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

__all__ = ["HeldOutIterativeImputer"]


class HeldOutIterativeImputer(IterativeImputer):
    """``IterativeImputer`` that completes held-out rows while it fits, keeping no estimator.

    ``fit(train)`` then ``transform(test)`` keeps every estimator of the round-robin
    (``imputation_sequence_``: rounds x features of them) because ``transform`` replays them in
    order on the test rows. With 50-tree ``ExtraTreesRegressor`` models — the MissForest-like
    baseline — on Frey faces' 560 pixels with incomplete training rows that is 10 x 560 fully
    grown forests, past 24 GB. :meth:`fit_impute` takes each estimator's ``transform`` step on
    the held-out rows as soon as the estimator is fitted and then drops it, so at most one is
    alive. The held-out imputation is the one ``fit(train).transform(test)`` returns, value for
    value (``tests/experiments/test_imputation_experiment.py`` checks it): ``transform`` draws
    no random numbers without ``sample_posterior``, so interleaving its steps with the fit
    changes nothing.

    It builds on two private methods of scikit-learn's class (``_impute_one_feature`` and
    ``_initial_imputation``); the test above fails if they change meaning.
    """

    def fit_impute(self, X, X_heldout) -> np.ndarray:
        """Fit on ``X`` (NaN = missing) and return ``X_heldout`` completed.

        :param X: training rows, shape ``(n, d)``.
        :param X_heldout: rows to complete, shape ``(m, d)``.
        :returns: the completed held-out rows (columns that are empty in ``X`` dropped unless
            ``keep_empty_features``, as ``transform`` does).
        """
        if self.sample_posterior:
            raise ValueError(
                "fit_impute needs sample_posterior=False: transform's posterior draws would "
                "come from the random state in a different order"
            )
        if self.add_indicator:
            raise ValueError("fit_impute does not add missing indicators (add_indicator=False)")
        self._heldout, self._heldout_state = X_heldout, None
        try:
            self.fit(X)
            if self._heldout_state is None:  # no step ran: the initial imputation is the answer
                self._start_heldout()
            observed, filled, missing = self._heldout_state
            filled[~missing] = observed[~missing]
            return filled
        finally:
            self._heldout = self._heldout_state = None

    def transform(self, X):
        """``IterativeImputer.transform`` after a plain ``fit``; refused after :meth:`fit_impute`,
        which dropped the estimators it would replay."""
        sequence = getattr(self, "imputation_sequence_", None)
        if sequence and sequence[0].estimator is None:
            raise RuntimeError("fit_impute kept no estimators to transform with; complete new "
                               "rows with fit_impute(X, X_heldout)")  # fmt: skip
        return super().transform(X)

    def _start_heldout(self):
        observed, filled, missing, _ = self._initial_imputation(self._heldout, in_fit=False)
        self._heldout_state = (observed, filled, missing)

    def _impute_one_feature(self, X_filled, mask_missing_values, feat_idx, neighbor_feat_idx,
                            estimator=None, fit_mode=True, params=None):  # fmt: skip
        X_filled, estimator = super()._impute_one_feature(
            X_filled, mask_missing_values, feat_idx, neighbor_feat_idx,
            estimator=estimator, fit_mode=fit_mode, params=params,
        )  # fmt: skip
        if not fit_mode or getattr(self, "_heldout", None) is None:
            return X_filled, estimator
        if self._heldout_state is None:  # the initial imputer is fitted by now
            self._start_heldout()
        observed, filled, missing = self._heldout_state
        filled, _ = super()._impute_one_feature(
            filled, missing, feat_idx, neighbor_feat_idx, estimator=estimator, fit_mode=False
        )
        self._heldout_state = (observed, filled, missing)
        return X_filled, None  # dropped: the held-out rows have had its step
