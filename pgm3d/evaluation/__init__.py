"""Metrics and diagnostics of models and posterior approximations."""

from pgm3d.evaluation.imputation import ImputationError, imputation_mse

__all__ = ["ImputationError", "imputation_mse"]
