"""Metrics for hallucination scores: higher score = more likely hallucinated (label 1).

Every function takes ``scores`` ``(n,)`` and labels ``y`` ``(n,)`` in {0, 1}. When ``y``
holds only one class a ranking metric is undefined: the function warns and returns
NaN instead of raising, so one degenerate split does not abort a whole report.
:mod:`.scores` holds the ranking, threshold, bootstrap and calibration metrics; :mod:`.curves`
the risk-coverage curve, PRR, reliability bins and the length controls.

    from truthtrace import metrics
    metrics.auroc(scores, y); metrics.prediction_rejection_ratio(scores, y)
"""

from truthtrace.metrics.curves import (aurc, partial_correlation, prediction_rejection_ratio, reliability_bins,
                                       risk_coverage, stratified_auroc)
from truthtrace.metrics.scores import (accuracy_at, auprc, auroc, average_ranks, balanced_accuracy_at,
                                       bootstrap_auroc_ci, bootstrap_mean_auroc, check_scores,
                                       expected_calibration_error, f1_at, has_two_classes, platt_calibrator,
                                       rank_auroc, roc_points, sklearn_metrics, threshold_from_val, tpr_at_fpr)

__all__ = ["accuracy_at", "auprc", "aurc", "auroc", "average_ranks", "balanced_accuracy_at", "bootstrap_auroc_ci",
           "bootstrap_mean_auroc", "check_scores", "expected_calibration_error", "f1_at", "has_two_classes",
           "partial_correlation", "platt_calibrator", "prediction_rejection_ratio", "rank_auroc", "reliability_bins",
           "risk_coverage", "roc_points", "sklearn_metrics", "stratified_auroc", "threshold_from_val", "tpr_at_fpr"]
