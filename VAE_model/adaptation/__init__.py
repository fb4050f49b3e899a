"""Part II: domain adaptation of the DECaLS-trained VAE to BASS+MzLS, and the metrics that judge it.

Modules (one concern each):
  losses    alignment losses: multi-kernel MMD (``mmd2``), paired latent distance (``paired_loss``)
  training  ``AdaptSettings`` and ``adapt``: fine-tune the Part I model with VAE + lambda * alignment
            (+ the consistency term of invariant training: methods consistency, consistency_mmd)
  metrics   ``pair_metrics``, ``model_quality``, ``evaluate_model``: distances, retrieval, RF transfer
  pairs     readers of a run's pair data (pairs.csv, the pair image caches, labels, Part I split)
  plots     pair galleries and distance histograms

The public API is re-exported here: ``from VAE_model.adaptation import adapt, pair_metrics``.
"""
from .losses import DEFAULT_KERNEL_MULTIPLIERS, mmd2, paired_loss, squared_distances
from .metrics import (BOOTSTRAP_SAMPLES, MIN_CLASS_MEMBERS, MIN_TEST_PAIRS, RANDOM_PAIR_SAMPLES, bootstrap_intervals,
                      classification_transfer, distance_table, evaluate_model, metrics_row, model_quality, pair_metrics,
                      paired_distances, random_pair_distances, retrieval_ranks, SWEEP_METRICS, forest_correct,
                      sweep_metrics, require_test_pairs)
from .pairs import pair_caches, pair_inputs, part1_validation, read_pair_labels
from .plots import save_distance_histograms, save_pair_gallery
from .training import (ADAPT_HISTORY_FIELDS, CONSISTENCY_METHODS, METHODS, MMD_METHODS, AdaptSettings, adapt,
                       adapt_one_epoch, adapt_validation, alignment_loss, part1_training_setting, write_adapt_history)

__all__ = ["ADAPT_HISTORY_FIELDS", "CONSISTENCY_METHODS", "MMD_METHODS", "part1_training_setting", "BOOTSTRAP_SAMPLES", "DEFAULT_KERNEL_MULTIPLIERS", "METHODS", "MIN_CLASS_MEMBERS",
           "RANDOM_PAIR_SAMPLES", "AdaptSettings", "adapt", "adapt_one_epoch", "adapt_validation", "alignment_loss",
           "bootstrap_intervals", "classification_transfer", "distance_table", "evaluate_model", "metrics_row",
           "mmd2", "model_quality", "pair_caches", "pair_metrics", "paired_distances", "paired_loss",
           "part1_validation", "random_pair_distances", "read_pair_labels", "pair_inputs", "retrieval_ranks",
           "save_distance_histograms", "save_pair_gallery", "squared_distances", "write_adapt_history",
           "SWEEP_METRICS", "forest_correct", "sweep_metrics", "MIN_TEST_PAIRS", "require_test_pairs"]
