"""Pure tensor metrics: segmentation (ARI, FG-ARI, mBO, Hungarian mIoU), reconstruction (MSE, PSNR),
CATER localization and multi-label mAP, CLEVRER question answering, linear-probe R^2, mask centroids. See ``docs/metrics.md`` for definitions and edge cases."""
from slotvideo.metrics.ari import ari, average_scores, contingency_table, fg_ari
from slotvideo.metrics.average_precision import average_precision, mean_average_precision
from slotvideo.metrics.cater import (
    CATER_GRID,
    average_clip_scores,
    cater_localization,
    class_to_cell,
    grid_l1_distance,
    position_to_class,
    top_k_accuracy,
)
from slotvideo.metrics.centroids import mask_centroids
from slotvideo.metrics.clevrer import MULTIPLE_CHOICE_TYPES, QUESTION_TYPES, ClevrerAccuracy, question_type_ids
from slotvideo.metrics.image import mse, psnr
from slotvideo.metrics.matching import hungarian_miou, linear_sum_assignment, mean_best_overlap
from slotvideo.metrics.probe import linear_probe_r2

__all__ = [
    "ari", "fg_ari", "average_scores", "contingency_table",
    "mean_best_overlap", "hungarian_miou", "linear_sum_assignment",
    "mse", "psnr",
    "CATER_GRID", "position_to_class", "class_to_cell", "top_k_accuracy", "grid_l1_distance",
    "average_clip_scores", "cater_localization", "average_precision", "mean_average_precision",
    "QUESTION_TYPES", "MULTIPLE_CHOICE_TYPES", "question_type_ids", "ClevrerAccuracy",
    "linear_probe_r2", "mask_centroids",
]
