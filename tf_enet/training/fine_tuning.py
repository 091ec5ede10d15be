"""Starting a run from a trained model (`--init_from`): fine-tuning.

The source is anything tf_enet loads as a Keras model: a preset name, a
run directory (its best model, or its encoder when only that stage ran) or
a `.keras` file. Every layer whose weight shapes fit is copied into the new
network by name (`tf_enet.transfer_weights`); the classifiers (`fullconv`,
the encoder stage's `encoder_classifier`) keep their fresh weights when
the number of classes differs, and are trained for the new classes.
"""

import os

from absl import logging

from tf_enet import artifacts, presets
from tf_enet.inference import loading
from tf_enet.model import transfer_weights
from tf_enet.training.errors import TrainingError

# Layers that map features to classes: trained anew for other classes.
CLASSIFIERS = ("fullconv", "encoder_classifier")
# Layer names the log lists at most.
_LISTED = 6


def source_path(init_from):
    """The directory or file `init_from` names, without loading anything.

    Args:
        init_from: str. A preset name, a run directory or a `.keras` file.

    Returns:
        str. The preset's directory, or `init_from` itself.
    """
    if not os.path.exists(init_from) and init_from in presets.PRESETS:
        return presets.preset_path(init_from)
    return init_from


def load_source(init_from):
    """Loads the model a run starts from.

    Args:
        init_from: str. A preset name (`tf_enet.list_presets()`), a run
            directory or a `.keras` file. A run directory with only its
            encoder stage gives that encoder.

    Returns:
        (model, record): the `keras.Model`, and the dict `config.json`
        keeps under "init_from": the name as given, the model file's
        absolute path and the source's class names (None if it has no
        configuration).

    Raises:
        TrainingError: naming --init_from and the file, when it is not a
            Keras ENet model (another format, damaged, not a segmentation
            model).
    """
    path = source_path(init_from)
    if not os.path.exists(path):
        raise TrainingError(
            f"--init_from {init_from}: no such file or directory; expected a "
            f"preset name ({', '.join(presets.list_presets())}), a run directory "
            "or a .keras file."
        )
    encoder = os.path.join(path, artifacts.ENCODER_DIR, artifacts.MODEL_FILE)
    if (
        os.path.isdir(path)
        and not os.path.exists(os.path.join(path, artifacts.MODEL_FILE))
        and os.path.exists(encoder)
    ):
        path = encoder
    try:
        model, config, info = loading.load_keras_model(path)
    except loading.ModelError as error:
        raise TrainingError(f"--init_from {init_from}: {error}") from None
    _, model_file, _ = loading.resolve_model_path(path)
    record = {
        "model": init_from,
        "path": os.path.abspath(model_file),
        "class_names": list(info.class_names) if config is not None else None,
    }
    return model, record


def initialise(model, source, record):
    """Copies every layer of `source` whose weights fit into `model`, and logs it.

    Args:
        model: keras.Model. The network about to train (fresh weights).
        source: keras.Model. The trained model (`load_source`).
        record: dict. `load_source`'s record, named in the log.

    Returns:
        dict: "copied" (layer names), "other_shapes" (layers of both models
        whose weight shapes differ: fresh here, or without weights here)
        and "not_in_source" (layers with weights only `model` has, kept
        fresh), each a list of str.
    """
    copied = transfer_weights(source, model, skip_mismatched=True)
    names = {layer.name for layer in model.layers}
    source_names = {layer.name for layer in source.layers}
    fresh = [layer.name for layer in model.layers if layer.weights and layer.name not in copied]
    report = {
        "copied": copied,
        # Seen from the source: a layer with weights there may have none here.
        "other_shapes": [
            layer.name
            for layer in source.layers
            if layer.weights and layer.name in names and layer.name not in copied
        ],
        "not_in_source": [name for name in fresh if name not in source_names],
    }
    kept = [
        *((name, "other weight shapes") for name in report["other_shapes"]),
        *((name, "not in the source") for name in report["not_in_source"]),
    ]
    # The classifiers first: they are the layers a user expects here.
    kept = [f"{n} ({why})" for n, why in sorted(kept, key=lambda k: k[0] not in CLASSIFIERS)]
    if len(kept) > _LISTED:
        kept[_LISTED:] = [f"and {len(kept) - _LISTED} more"]
    logging.info(
        "Initialised %d of %d layers with weights from %s (%s); not copied: %s",
        len(copied),
        len(copied) + len(fresh),
        record["model"],
        record["path"],
        ", ".join(kept) or "none",
    )
    unexpected = [name for name in report["other_shapes"] if name not in CLASSIFIERS]
    if unexpected or not copied:
        logging.warning(
            "%s fits this network badly: %s. Were the models built with the "
            "same options (--num_initial_blocks, --stage_two_repeat, "
            "--skip_connections)?",
            record["model"],
            f"{len(unexpected)} layers besides the classifier have other weight shapes"
            if unexpected
            else "no layer was copied",
        )
    return report
