"""Metrics and diagnostics of models and posterior approximations."""

from pgm3d.evaluation.compare import PosteriorComparison, evaluate_posteriors
from pgm3d.evaluation.counting import count_accuracy, count_confusion, kl_count_threshold
from pgm3d.evaluation.diagnostics import (
    ActiveUnits,
    SBCResult,
    active_units,
    guide_from,
    kl_to_exact,
    psis_khat,
    sbc,
)
from pgm3d.evaluation.geometry import (
    chamfer_distance,
    normal_angles,
    pca_normals,
    symmetry_score,
    voxel_iou,
)
from pgm3d.evaluation.imputation import ImputationError, imputation_mse
from pgm3d.evaluation.likelihood import log_likelihood_per_dim
from pgm3d.evaluation.linearity import family_linearity, linear_fit_residual, pca_residual
from pgm3d.evaluation.reconstruction import (
    alpha_shape,
    deform_embedded,
    extract_surface,
    reconstruct_surface,
    template_surface,
)

__all__ = [
    "ActiveUnits",
    "ImputationError",
    "PosteriorComparison",
    "SBCResult",
    "active_units",
    "alpha_shape",
    "chamfer_distance",
    "count_accuracy",
    "count_confusion",
    "deform_embedded",
    "evaluate_posteriors",
    "extract_surface",
    "family_linearity",
    "guide_from",
    "imputation_mse",
    "kl_count_threshold",
    "kl_to_exact",
    "linear_fit_residual",
    "log_likelihood_per_dim",
    "normal_angles",
    "pca_normals",
    "pca_residual",
    "psis_khat",
    "reconstruct_surface",
    "sbc",
    "symmetry_score",
    "template_surface",
    "voxel_iou",
]
