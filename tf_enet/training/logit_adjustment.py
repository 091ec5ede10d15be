"""The logit adjustment of a finished run: chosen, folded in, recorded.

The math is `tf_enet.logit_adjustment`; this module decides when it runs
and keeps `best.json` and `model.keras` consistent across restarts.
"""

import os

import keras
import numpy as np
from absl import logging

from tf_enet import artifacts, inference, logit_adjustment
from tf_enet import metrics as metrics_lib

# Training images the "auto" adjustment scores at most (a seeded sample):
# alpha is one number per model, and the mean IoU over a few hundred images
# picks it as well as over thousands (Cityscapes has 2975 at 1024x2048).
ADJUSTMENT_SAMPLE = 300


def adjust_logits(config, dataset, weights):
    """Folds the configured logit adjustment into the best full model.

    Done once per best model: `best.json` records alpha with the last
    layer's bias before and after, and a new best model (a longer run) comes
    with a new record. A changed setting starts again from the trained bias.
    The record is written before an adjusted model and after a restored one,
    so a kill in between leaves a state the next run completes.

    Returns:
        dict or None: the record (alpha, how it was chosen, mean IoUs), or
        None when there is no model or nothing to adjust.
    """
    model_path = os.path.join(config.checkpoint_dir, artifacts.MODEL_FILE)
    record_path = os.path.join(config.checkpoint_dir, artifacts.BEST_FILE)
    if not (os.path.exists(model_path) and os.path.exists(record_path)):
        return None
    record = artifacts.read_json(record_path)
    previous = record.pop("logit_adjustment", None)
    setting = config.logit_adjustment
    wanted = setting != "off" and not np.allclose(weights, weights[0])
    if previous is None and not wanted:
        return None
    model = keras.saving.load_model(model_path, compile=False)
    bias = logit_adjustment.logits_bias(model)
    same = previous is not None and previous["setting"] == setting
    if same and np.allclose(bias.numpy(), previous["bias"]):
        return previous
    if previous is not None:
        bias.assign(previous["trained_bias"])
    if not wanted:
        artifacts.write_atomically(model_path, model.save)
        artifacts.write_json(record_path, record)
        return None
    adjusted = previous if same else choose_adjustment(config, dataset, weights, model)
    logit_adjustment.fold_adjustment(model, weights, adjusted["alpha"])
    adjusted["bias"] = bias.numpy().tolist()
    record["logit_adjustment"] = adjusted
    artifacts.write_json(record_path, record)
    artifacts.write_atomically(model_path, model.save)
    logging.info(
        "Logit adjustment alpha=%g: val mIoU %.4f -> %.4f",
        adjusted["alpha"],
        adjusted["val_mean_iou_before"],
        adjusted["val_mean_iou"],
    )
    return adjusted


def adjustment_scores(
    predictor, dataset, class_weights, split="train", *, alphas=logit_adjustment.ALPHAS, **options
):
    """Scores `argmax(logits - alpha * log(class_weights))` for each alpha.

    One pass over the split (`tf_enet.logit_adjustment.offset_confusion_matrices`), every
    alpha counted from the same logits.

    Args:
        predictor: tf_enet.inference.Predictor, or a keras.Model.
        dataset: tf_enet.data.SegmentationDataset.
        class_weights: float array-like `[num_classes]`, non-negative. The
            weights the model was trained with; classes weighing 0 are
            left as trained.
        split: str. Split to score.
        alphas: sequence of float. Adjustment strengths to score.
        **options: for `tf_enet.inference.split_logits`: `limit`, `sample`, `seed`,
            `input_size`, `resize_labels`, `on_batch`.

    Returns:
        dict: alpha -> `tf_enet.metrics.scores` of its confusion matrix.

    Raises:
        ValueError: the weights are negative, not finite or not one per
            class.
    """
    log_weights = logit_adjustment.log_weights(class_weights, dataset.info.num_classes)
    offsets = [-np.float32(alpha) * log_weights for alpha in alphas]
    matrices = logit_adjustment.offset_confusion_matrices(
        predictor, dataset, split, offsets, **options
    )
    return {float(a): metrics_lib.scores(m) for a, m in zip(alphas, matrices)}


def choose_adjustment(config, dataset, weights, model):
    """Alpha (chosen on the training split for "auto") and its val scores.

    Both splits are scored at the training size, as validation is; the
    training split on a seeded sample of at most `ADJUSTMENT_SAMPLE` images,
    recorded under "scored_on".
    """
    setting = config.logit_adjustment
    predictor = inference.Predictor.from_model(model, dataset.info)
    scale = dict(input_size=(config.height, config.width), resize_labels=True)
    adjusted = {
        "setting": setting,
        "trained_bias": logit_adjustment.logits_bias(model).numpy().tolist(),
        "scored_on": {"size": [config.height, config.width]},
    }
    if setting == "auto":
        sample = ADJUSTMENT_SAMPLE
        logging.info("Choosing the logit adjustment on the training split")
        scores = adjustment_scores(
            predictor,
            dataset,
            weights,
            "train",
            limit=config.limit,
            sample=sample,
            seed=config.seed,
            **scale,
        )
        alpha = logit_adjustment.best_alpha(scores)
        adjusted["train_mean_iou"] = {f"{a:g}": float(s["mean_iou"]) for a, s in scores.items()}
        available = len(dataset.files("train")[: config.limit])
        adjusted["scored_on"]["train_images"] = min(sample, available)
    else:
        alpha = float(setting)
    val = adjustment_scores(
        predictor,
        dataset,
        weights,
        "val",
        alphas=(0.0, alpha),
        limit=config.val_limit,
        **scale,
    )
    adjusted.update(
        alpha=alpha,
        val_mean_iou_before=float(val[0.0]["mean_iou"]),
        val_mean_iou=float(val[alpha]["mean_iou"]),
    )
    return adjusted
