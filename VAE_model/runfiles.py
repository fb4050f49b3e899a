"""The run-directory layout: every file a stage reads or writes, named once.

A run directory (default ``runs/demo``) holds one experiment. Each stage finds its inputs
here by these fixed names and says which earlier stage to run when one is missing.
The mock survey (the embedded default data) lives outside the run directory, under
``data/mock`` by default, with the layout in ``MOCK_*`` below.
"""
from __future__ import annotations

from pathlib import Path

from .errors import MissingInputError

DEFAULT_RUN = "runs/demo"
DEFAULT_MOCK_DIR = "data/mock"

# --- mock survey layout (relative to the mock directory) -------------------------------
MOCK_DECALS_IMAGES = "decals"            # FITS cutouts, DECaLS-like
MOCK_BASS_IMAGES = "bass_mzls"           # FITS cutouts, BASS+MzLS-like
MOCK_DECALS_CATALOG = "gz_decals.parquet"
MOCK_BASS_CATALOG = "gz_bass_mzls.parquet"
MOCK_TRUTH = "truth.parquet"             # ground truth; training never reads it
MOCK_META = "mock_meta.json"
MOCK_EXAMPLES_PNG = "examples_by_class.png"

# --- stage outputs (relative to the run directory) -------------------------------------
# make_datatxt.py
TRAIN_TXT = "train.txt"
REJECTED_CSV = "rejected_images.csv"
DATATXT_SUMMARY = "datatxt_summary.json"
IMAGES_CSV = "images.csv"                # per image: position, pixel scale, bands, masked fraction, shape
RESAMPLED_DIR = "resampled"              # --resample-to-native: 0.262"/px copies of off-scale FITS
# Galaxy_VAE_n.py
TRAIN_ARGS = "args.json"
CHECKPOINT = "checkpoint.pt"             # last epoch, saved atomically every epoch
BEST_CHECKPOINT = "best.pt"              # best validation loss
LOSS_CSV = "loss_history.csv"
LOSS_PNG = "loss_history.png"
RECON_PNG = "reconstructions.png"
SPLIT_JSON = "split.json"                # train/validation indices into train.txt
CACHE_DIR = "cache"                      # decode-once image caches
CACHE_META = "cache/{list}_{size}px/meta.json"   # a list's cache, complete when this is there (data.cache_folder, shards.py)
# analysis/decals_1.py
SELECTION_DIR = "selection"
CLASS_COUNTS_CSV = "selection/class_counts.csv"
# analysis/decals_2_1.py
CLASS_INDEX_CSV = "selection/class_index.csv"
# analysis/decals_2_2.py
LATENTS_DIR = "latents"
LATENT_MU = "latents/mu.npy"
LATENT_LOGVAR = "latents/logvar.npy"
LATENT_NAMES = "latents/names.csv"
LATENT_TABLE_PARQUET = "latents/latents.parquet"     # one table: names, positions, mu_*, logvar_*, model identity
# analysis/decals_2_3.py
LATENT_SIZE_DIR = "latent_size"
# analysis/decals_3.py
MAPS_DIR = "maps"
# analysis/decals_4.py
OUTLIERS_DIR = "outliers"
# analysis/decals_5.py
CLASSIFICATION_DIR = "classification"
# analysis/decals_6.py
SIMILARITY_DIR = "similarity"
# transfer/
TRANSFER_DIR = "transfer"
REPORT_MD = "REPORT.md"


def require(path: str | Path, made_by: str) -> Path:
    """Return ``path`` if it exists, else raise one clear line naming the stage to run first."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: not found; run `{made_by}` first")
    return path


def run_path(run_dir: str | Path, name: str) -> Path:
    """Path of a named run file to write, creating its parent folder; the stage running on ``run_dir``
    (VAE_model/stage.py) records it among its outputs."""
    from .stage import note_output

    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    note_output(run_dir, name)
    return path

# --- more names: analysis/decals_1.py .. decals_3.py -------------------------------------
SELECTION_CLASSES_CSV = "selection/classes.csv"            # long table iauname, ra, dec, question, label
SELECTION_CONFIG_JSON = "selection/selection_config.json"  # decals_1 flags, catalog path, threshold
CATALOG_INDEX_CSV = "selection/catalog_index.csv"          # every catalog galaxy -> row of train.txt (-1: none)
MATCH_SUMMARY_JSON = "selection/match_summary.json"        # decals_2_1 method, counts matched / without image
LATENT_CLASSES_DIR = "latents/classes"                     # <question>_mu.npy + <question>_labels.csv
LATENT_CONFIG_JSON = "latents/latents_config.json"         # checkpoint, image_size, latent_dim, device
MAP_EMBEDDINGS_CSV = "maps/embeddings.csv"                 # image_index, name, pca_1, pca_2, tsne_1, ...
MAPS_CONFIG_JSON = "maps/maps_config.json"

# --- more names: analysis/decals_2_3.py (latent-size study), analysis/decals_4.py (outliers) --
LATENT_SIZE_SUBRUN = "latent_size/z{latent_dim}"           # one sub-run (checkpoint.pt, best.pt, ...) per size
LATENT_SIZE_CSV = "latent_size/latent_size.csv"            # latent_dim, val_mse_per_pixel, val_ssim, rf_accuracy, ...
LATENT_SIZE_PNG = "latent_size/latent_size.png"
LATENT_SIZE_JSON = "latent_size/latent_size.json"          # chosen size, rule, config
LATENT_SIZE_RECON_NPZ = "latent_size/reconstructions.npz"  # originals, recon_<k>, names (same validation galaxies)
LATENT_SIZE_RECON_PNG = "latent_size/reconstructions_by_size.png"  # the same, as an image grid
OUTLIER_SCORES_CSV = "outliers/outlier_scores.csv"         # ranked: image_index, name, scores, rank (path: readers.read_outlier_scores)
OUTLIER_GALLERY_PNG = "outliers/top_outliers.png"
OUTLIER_CONFIG_JSON = "outliers/outliers_config.json"
DEFECT_SCORES_JSON = "outliers/defect_scores.json"         # mock survey: precision/recall of planted defects
DEFECT_SCORES_CSV = "outliers/defect_scores.csv"

# --- more names: analysis/decals_6.py (similarity search) --------------------------------
SIMILARITY_QUERY = "similarity/query_{slug}"                   # + .csv (rank, name, ...), .png gallery, .json config
SIMILARITY_LATENTS = "similarity/latents_{model}.npy"          # DECaLS latents not in latents/mu.npy: other model or orientation-averaged (+ .json)
SIMILARITY_BASS_LATENTS = "similarity/bass_latents_{model}.npy"  # BASS+MzLS pair latents (+ .json: rows kept)
SIMILARITY_POSITIONS_CSV = "similarity/index_positions.csv"    # image_index, name, ra, dec, source (catalog/header)
SIMILARITY_PRECISION_CSV = "similarity/precision_at_10.csv"    # model, morph_type, n_queries, precision_at_10, random_expectation
SIMILARITY_PRECISION_JSON = "similarity/precision_at_10.json"  # same + cross-survey scores, defect policy, config
SIMILARITY_PRECISION_PNG = "similarity/precision_at_10.png"
SIMILARITY_CROSS_CSV = "similarity/cross_survey_precision.csv"  # BASS+MzLS test pairs as queries vs DECaLS latents

# --- Part II, transfer/ (domain adaptation DECaLS -> BASS+MzLS); "{method}" is mmd or paired ---
TRANSFER_PAIRS_CSV = "transfer/pairs.csv"                  # make_pairs: pair_id, decals_iauname, bass_iauname, ra, dec, sep_arcsec, split, decals_path, bass_path
TRANSFER_DECALS_LIST = "transfer/decals_pairs.txt"         # DECaLS image of each pair, row-aligned with pairs.csv
TRANSFER_BASS_LIST = "transfer/bass_pairs.txt"             # BASS+MzLS image of each pair, row-aligned with pairs.csv
TRANSFER_PAIR_LABELS_CSV = "transfer/pair_labels.csv"      # pair_id + one class-label column per class question (DECaLS votes)
TRANSFER_SKIPPED_CSV = "transfer/skipped_pairs.csv"        # matched galaxies without a usable image, with the reason
TRANSFER_PAIRS_JSON = "transfer/pairs_summary.json"        # make_pairs counts + configuration
TRANSFER_EXAMPLES_PNG = "transfer/pairs_examples.png"      # DECaLS | BASS+MzLS examples
TRANSFER_METRICS_BEFORE = "transfer/metrics_before.json"   # no_tf: metrics of the Part I model (+ configuration)
TRANSFER_MU_DECALS_BEFORE = "transfer/mu_decals_before.npy"  # (n_pairs, latent_dim), rows as pairs.csv
TRANSFER_MU_BASS_BEFORE = "transfer/mu_bass_before.npy"
TRANSFER_DISTANCES_BEFORE = "transfer/distances_before.csv"  # pair_id, split, names, latent_distance, retrieval_rank
TRANSFER_DISTANCE_BEFORE_PNG = "transfer/distance_before.png"
TRANSFER_MOST_ALIKE_PNG = "transfer/pairs_most_alike.png"
TRANSFER_LEAST_ALIKE_PNG = "transfer/pairs_least_alike.png"
ADAPT_DIR = "transfer/{method}"                            # adapt.py, one folder per method
ADAPT_CHECKPOINT = "transfer/{method}/checkpoint.pt"       # last epoch (training.save_training_checkpoint format)
ADAPT_BEST = "transfer/{method}/best.pt"                   # best adaptation-validation loss; runtime.load_model reads it
ADAPT_HISTORY_CSV = "transfer/{method}/history.csv"
ADAPT_HISTORY_PNG = "transfer/{method}/history.png"
ADAPT_SUMMARY_JSON = "transfer/{method}/adapt_summary.json"  # configuration + quality guards before/after
ADAPT_METRICS_JSON = "transfer/{method}/metrics.json"      # evaluate.py: the no_tf metrics for this method
ADAPT_MU_DECALS = "transfer/{method}/mu_decals.npy"
ADAPT_MU_BASS = "transfer/{method}/mu_bass.npy"
ADAPT_DISTANCES_CSV = "transfer/{method}/distances.csv"
TRANSFER_BEFORE_AFTER_CSV = "transfer/before_after.csv"    # evaluate.py: metric x (no transfer, mmd, paired)
TRANSFER_BEFORE_AFTER_MD = "transfer/before_after.md"
TRANSFER_DISTANCE_HIST_PNG = "transfer/distance_hist.png"
TRANSFER_ADAPTED = "transfer/adapted.pt"                   # THE adapted model: copy of the better method's best.pt
TRANSFER_ADAPTED_JSON = "transfer/adapted.json"            # which method, why, source checkpoint

# --- more names: analysis/decals_5.py (classification: latents vs morphology vs supervised CNN) --
CLASSIFICATION_RESULTS_CSV = "classification/results.csv"          # question, method, model, n_galaxies, ..., accuracy/macro F1
CLASSIFICATION_RESULTS_MD = "classification/results.md"            # table questions x methods + "RF on latents ~ CNN" line
CLASSIFICATION_CONFUSION_JSON = "classification/confusion.json"    # question -> method/model -> classes, summed matrix
CLASSIFICATION_CONFUSION_PNG = "classification/confusion_{question}.png"  # RF on latents, row-normalised
CLASSIFICATION_MORPHOLOGY_CSV = "classification/morphology_features.csv"  # image_index, name, C, A, S, Gini, M20, ellipticity
CLASSIFICATION_CONFIG_JSON = "classification/classification_config.json"  # flags, seed, commit, skipped questions, timing

# --- analysis/explore.py (the latent-space explorer page) ---------------------------------
EXPLORER_HTML = "explorer/index.html"                      # one self-contained page (Bokeh inlined, thumbnails embedded)
EXPLORER_CONFIG_JSON = "explorer/explorer_config.json"     # flags, model, counts, page size

# --- bench/benchmark.py -------------------------------------------------------------------
BENCH_JSON = "bench/benchmark.json"                        # reference-style vs project images/s, FLOPs, data wait

# analysis/decals_7.py: the feature scorecard
SCORECARD_CSV = "scorecard/scorecard.csv"                  # long: feature_set, metric, label, value, low, high, n
SCORECARD_MD = "scorecard/scorecard.md"                    # one table, feature sets x metrics, and the verdicts
SCORECARD_JSON = "scorecard/scorecard.json"                # flags, seed, verdicts, contrastive training time
SCORECARD_CONTRASTIVE = "scorecard/contrastive.pt"         # the contrastive encoder scored (model, model_config, kind)
