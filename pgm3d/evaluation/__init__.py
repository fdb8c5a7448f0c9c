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
    largest_connected_component,
    normal_angles,
    occupancy_iou,
    pca_normals,
    symmetry_score,
    voxel_average_precision,
    voxel_iou,
)
from pgm3d.evaluation.imputation import ImputationError, imputation_mse
from pgm3d.evaluation.information import (
    discrete_entropy,
    kde_mutual_information,
    kraskov_entropy,
    kraskov_mutual_information,
    negative_cross_entropy,
)
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
    "discrete_entropy",
    "evaluate_posteriors",
    "extract_surface",
    "family_linearity",
    "guide_from",
    "imputation_mse",
    "kde_mutual_information",
    "kl_count_threshold",
    "kl_to_exact",
    "kraskov_entropy",
    "kraskov_mutual_information",
    "largest_connected_component",
    "linear_fit_residual",
    "log_likelihood_per_dim",
    "negative_cross_entropy",
    "normal_angles",
    "occupancy_iou",
    "pca_normals",
    "pca_residual",
    "psis_khat",
    "reconstruct_surface",
    "sbc",
    "symmetry_score",
    "template_surface",
    "voxel_average_precision",
    "voxel_iou",
]
