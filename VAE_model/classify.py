"""Cross-validated morphology classifiers on any feature table (latents, classical morphology, ...).

Protocol (the same for every method, so their scores are comparable):
  * classes with fewer members than the folds are dropped; if fewer than two classes are left,
    the folds are reduced to the size of the second-largest class (at least 2) and that is recorded;
  * stratified K-fold cross-validation, shuffled with ``seed`` (``planned_folds``), so any other
    method (e.g. the supervised CNN of ``VAE_model.supervised``) can be scored on the SAME folds;
  * per model: accuracy and macro-averaged F1 (mean and standard deviation over the folds) and
    the confusion matrix summed over the folds (rows = true class, columns = predicted class,
    in the order of ``classes``).

Models (scikit-learn; missing values, e.g. NaN morphology of a degenerate image, are replaced by
the training-fold median inside the pipeline, so nothing leaks from the test fold):
  random_forest   200 trees (reference), all cores, ``random_state=seed``; no scaling needed
  knn             k = 10 nearest neighbours on standardised features
  logistic        multinomial logistic regression on standardised features, max_iter 2000
Any model can be preceded by a PCA fitted on the training fold (``pca_components``): the pixel
baseline of analysis/decals_5.py (PCA of the image pixels with as many components as the latent
size; features that do not beat it are not worth having).

Usage (the latent-size study scores one latent space by the mean random-forest accuracy):

    from VAE_model.classify import score_question, score_table, mean_rf_accuracy
    result = score_question(mu[image_index], labels, folds=5, seed=0, models=("random_forest",))
    result["models"]["random_forest"]["accuracy_mean"]
    mean_rf_accuracy(mu, class_index)     # class_index = RUN/selection/class_index.csv as a DataFrame
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import NotEnoughDataError

MODELS = ("random_forest", "knn", "logistic")
RF_TREES = 200          # reference forest size
KNN_NEIGHBOURS = 10
LOGISTIC_MAX_ITER = 2000


class NotEnoughClassesError(NotEnoughDataError):
    """Fewer than two classes with enough members to cross-validate; str() says why."""


@dataclass
class LabelPlan:
    """Which galaxies and how many folds a question can be cross-validated with."""

    keep: np.ndarray                    # boolean mask over the input labels
    classes: list                       # kept class labels, sorted
    folds: int                          # folds actually used
    folds_requested: int
    dropped_classes: dict = field(default_factory=dict)   # label -> count

    @property
    def folds_reduced(self) -> bool:
        return self.folds != self.folds_requested


def plan_labels(labels, folds: int = 5) -> LabelPlan:
    """Drop classes with fewer than ``folds`` members; reduce the folds if < 2 classes remain.

    Raises NotEnoughClassesError when not even two classes of >= 2 members exist.
    """
    labels = np.asarray(labels)
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    names, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    used = folds
    if len(names) < 2 or counts[order[1]] < 2:
        summary = ", ".join(f"{n}: {c}" for n, c in zip(names, counts)) or "no galaxies"
        raise NotEnoughClassesError(f"needs two classes with >= 2 galaxies ({summary})")
    if counts[order[1]] < folds:
        used = int(counts[order[1]])
    kept = [n for n, c in zip(names, counts) if c >= used]
    dropped = {str(n): int(c) for n, c in zip(names, counts) if c < used}
    return LabelPlan(keep=np.isin(labels, kept), classes=sorted(kept), folds=used, folds_requested=folds,
                     dropped_classes=dropped)


def fold_indices(labels, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of a shuffled stratified K-fold split; every method uses these."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(train, test) for train, test in splitter.split(np.zeros(len(labels)), labels)]


def planned_folds(labels, folds: int = 5, seed: int = 0) -> tuple[LabelPlan, np.ndarray, list]:
    """``plan_labels``, then ``fold_indices`` on the labels it keeps: (the plan, the kept labels, their
    (train, test) splits as indices into the kept labels). Every method scored on a question takes
    its galaxies and folds from here, so all are scored on the same ones.

    Raises NotEnoughClassesError when the labels cannot be cross-validated.
    """
    labels = np.asarray(labels)
    plan = plan_labels(labels, folds)
    kept = labels[plan.keep]
    return plan, kept, fold_indices(kept, plan.folds, seed)


def make_model(name: str, seed: int = 0, n_train: int | None = None, n_jobs: int = -1,
               pca_components: int | None = None):
    """A fresh scikit-learn pipeline (median imputation first) for one of ``MODELS``.

    ``pca_components``: a PCA to that many components after the imputation (fitted on the
    training fold only, like everything in the pipeline): the pixel-PCA baseline.
    """
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [SimpleImputer(strategy="median", keep_empty_features=True)]
    if pca_components is not None:
        steps.append(PCA(n_components=pca_components, svd_solver="randomized", random_state=seed))
    if name == "random_forest":
        return make_pipeline(*steps, RandomForestClassifier(n_estimators=RF_TREES, n_jobs=n_jobs, random_state=seed))
    if name == "knn":
        k = KNN_NEIGHBOURS if n_train is None else max(1, min(KNN_NEIGHBOURS, n_train))
        return make_pipeline(*steps, StandardScaler(), KNeighborsClassifier(n_neighbors=k))
    if name == "logistic":
        return make_pipeline(*steps, StandardScaler(), LogisticRegression(max_iter=LOGISTIC_MAX_ITER))
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def summarise_folds(y_true_folds: list[np.ndarray], y_pred_folds: list[np.ndarray], classes: list) -> dict:
    """Accuracy and macro F1 per fold (mean, std) and the confusion matrix summed over folds."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    accuracy = [accuracy_score(t, p) for t, p in zip(y_true_folds, y_pred_folds)]
    macro_f1 = [f1_score(t, p, labels=classes, average="macro", zero_division=0)
                for t, p in zip(y_true_folds, y_pred_folds)]
    confusion = sum(confusion_matrix(t, p, labels=classes) for t, p in zip(y_true_folds, y_pred_folds))
    return {"accuracy_mean": float(np.mean(accuracy)), "accuracy_std": float(np.std(accuracy)),
            "macro_f1_mean": float(np.mean(macro_f1)), "macro_f1_std": float(np.std(macro_f1)),
            "accuracy_folds": [float(a) for a in accuracy], "macro_f1_folds": [float(f) for f in macro_f1],
            "classes": [str(c) for c in classes], "confusion": np.asarray(confusion).tolist()}


def cross_validate(features: np.ndarray, labels: np.ndarray, splits, model: str, seed: int = 0,
                   classes: list | None = None, pca_components: int | None = None) -> dict:
    """Score one model on given (train, test) splits of already-filtered features/labels.

    ``pca_components``: reduce the features by a PCA fitted on each training fold first (at most
    as many components as training galaxies or features).
    """
    features = np.asarray(features, dtype=np.float32 if pca_components else np.float64)
    labels = np.asarray(labels)
    classes = sorted(np.unique(labels)) if classes is None else classes
    truths, predictions = [], []
    for train, test in splits:
        components = None if pca_components is None else int(min(pca_components, len(train), features.shape[1]))
        estimator = make_model(model, seed, n_train=len(train), pca_components=components)
        estimator.fit(features[train], labels[train])
        truths.append(labels[test])
        predictions.append(estimator.predict(features[test]))
    return summarise_folds(truths, predictions, classes)


def score_question(features: np.ndarray, labels, folds: int = 5, seed: int = 0, models=MODELS) -> dict:
    """Cross-validated scores of ``models`` for one class question.

    features: (N, D) array (NaN allowed), labels: N class labels.
    Returns {"n_galaxies", "n_classes", "classes", "folds", "folds_requested", "dropped_classes",
             "keep" (mask over the input rows), "models": {model: summarise_folds(...)}}.
    Raises NotEnoughClassesError when the question cannot be cross-validated.
    """
    features = np.asarray(features)
    labels = np.asarray(labels)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    plan, y, splits = planned_folds(labels, folds, seed)
    x = features[plan.keep]
    return {"n_galaxies": int(plan.keep.sum()), "n_classes": len(plan.classes), "classes": [str(c) for c in plan.classes],
            "folds": plan.folds, "folds_requested": folds, "dropped_classes": plan.dropped_classes, "keep": plan.keep,
            "models": {m: cross_validate(x, y, splits, m, seed, plan.classes) for m in models}}


def question_labels(class_index: pd.DataFrame, question: str) -> pd.DataFrame:
    """Rows of one question (one per image: duplicates of an image keep their first label)."""
    rows = class_index[class_index["question"] == question]
    return rows.drop_duplicates("image_index", keep="first").reset_index(drop=True)


def score_table(features: np.ndarray, class_index: pd.DataFrame, folds: int = 5, seed: int = 0,
                models=("random_forest",), questions=None) -> pd.DataFrame:
    """Score ``features`` (rows = images of train.txt) on every question of a class_index table.

    Questions that cannot be cross-validated are left out. One row per (question, model) with
    n_galaxies, n_classes, folds and the accuracy/macro-F1 means and standard deviations.
    """
    rows = []
    for question in questions or list(dict.fromkeys(class_index["question"])):
        table = question_labels(class_index, question)
        try:
            result = score_question(features[table["image_index"].to_numpy()], table["label"].to_numpy(),
                                    folds, seed, models)
        except NotEnoughClassesError:
            continue
        for model, scores in result["models"].items():
            rows.append({"question": question, "model": model, "n_galaxies": result["n_galaxies"],
                         "n_classes": result["n_classes"], "folds": result["folds"],
                         **{k: scores[k] for k in ("accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std")}})
    return pd.DataFrame(rows)


def mean_rf_accuracy(features: np.ndarray, class_index: pd.DataFrame, folds: int = 5, seed: int = 0,
                     questions=None) -> float:
    """Random-forest accuracy averaged over the questions (the latent-size study's one number).

    ``features`` rows are the images of train.txt (e.g. latents/mu.npy); NaN if no question scores.
    """
    table = score_table(features, class_index, folds, seed, ("random_forest",), questions)
    return float(table["accuracy_mean"].mean()) if len(table) else float("nan")
