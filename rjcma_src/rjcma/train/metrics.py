"""Evaluation metrics, as imported by earlier notebooks and scripts: they live in :mod:`rjcma.metrics` (base layer,
shared by the data generator, the loss and the evaluation)."""

from rjcma.metrics import all_metrics, ccc, ccc_per_trial, concordance, pcc, rmse

__all__ = ["all_metrics", "ccc", "ccc_per_trial", "concordance", "pcc", "rmse"]
