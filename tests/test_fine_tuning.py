"""Fine-tuning (`--init_from`): what is copied, logged, recorded and protected."""

import json
import os
import shutil

import numpy as np
import pytest

import tf_enet
from tf_enet import artifacts, training
from tf_enet.training import TrainConfig, TrainingError, fine_tuning

from helpers import REPO, make_shapes_dataset

SMALL = dict(stage_two_repeat=1)


def randomise(model, seed):
    rng = np.random.RandomState(seed)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    return model


def test_a_model_for_other_classes_is_copied_except_its_classifier():
    source = randomise(tf_enet.build_enet(11, **SMALL), 1)
    target = tf_enet.build_enet(3, **SMALL)
    fresh_fullconv = target.get_layer("fullconv").get_weights()
    # The recipe of ENet.from_preset's docstring failed here before.
    with pytest.raises(ValueError, match="fullconv.*skip_mismatched=True"):
        tf_enet.transfer_weights(source, target)
    copied = tf_enet.transfer_weights(source, target, skip_mismatched=True)
    with_weights = [layer.name for layer in target.layers if layer.weights]
    assert sorted(copied) == sorted(set(with_weights) - {"fullconv"})
    for name in ("initial_block_conv", "bottleneck5_1_conv", "bottleneck2_3_asymmetric_conv_5x1"):
        for a, b in zip(source.get_layer(name).weights, target.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for before, after in zip(fresh_fullconv, target.get_layer("fullconv").get_weights()):
        np.testing.assert_array_equal(before, after)


def test_initialise_reports_and_logs_what_was_not_copied(caplog):
    caplog.set_level("INFO", logger="absl")
    record = {"model": "my_encoder", "path": "/runs/a/encoder/model.keras"}
    encoder = tf_enet.build_enet_encoder(5, **SMALL)
    full = tf_enet.build_enet(3, **SMALL)
    report = fine_tuning.initialise(full, encoder, record)
    decoder = [
        layer.name
        for layer in full.layers
        if layer.weights and layer.name.startswith(("bottleneck4", "bottleneck5", "fullconv"))
    ]
    # An encoder has no decoder: those layers start fresh, nothing clashes.
    assert report["other_shapes"] == []
    assert sorted(report["not_in_source"]) == sorted(decoder)
    line = next(r.getMessage() for r in caplog.records if "Initialised" in r.getMessage())
    total = len([layer for layer in full.layers if layer.weights])
    assert line.startswith(
        f"Initialised {total - len(decoder)} of {total} layers with weights from "
        "my_encoder (/runs/a/encoder/model.keras); not copied: "
        "fullconv (not in the source), bottleneck4_0_projection (not in the source), "
    )
    assert line.endswith(f"and {len(decoder) - 6} more")

    caplog.clear()
    # The other way round: the full model's classifier is not the encoder's.
    report = fine_tuning.initialise(tf_enet.build_enet_encoder(3, **SMALL), full, record)
    assert report == {
        "copied": report["copied"],
        "other_shapes": [],
        "not_in_source": ["encoder_classifier"],
    }
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_source_built_with_other_options_is_warned_about(caplog):
    caplog.set_level("INFO", logger="absl")
    source = tf_enet.build_enet(3, **SMALL)  # PReLU in the encoder
    target = tf_enet.build_enet(3, encoder_activation="relu", **SMALL)
    report = fine_tuning.initialise(target, source, {"model": "other", "path": "/x.keras"})
    assert "bottleneck1_0_conv_activation" in report["other_shapes"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "--num_initial_blocks" in warnings[0]
    assert "layers besides the classifier have other weight shapes" in warnings[0]


def test_load_source_reads_presets_run_directories_and_refuses_other_formats(tmp_path):
    model, record = fine_tuning.load_source("enet_camvid")
    assert record["model"] == "enet_camvid"
    assert record["path"] == os.path.join(
        REPO, "tf_enet", "presets", "enet_camvid", artifacts.MODEL_FILE
    )
    assert record["class_names"][:2] == ["Sky", "Building"] and len(record["class_names"]) == 11
    assert model.outputs[0].shape[-1] == 11

    # A run that trained only its encoder: the encoder is the source.
    run = tmp_path / "run"
    (run / "encoder").mkdir(parents=True)
    tf_enet.build_enet_encoder(4, **SMALL).save(run / "encoder" / "model.keras")
    model, record = fine_tuning.load_source(str(run))
    assert model.name == "enet_encoder"
    assert record["path"] == str(run / "encoder" / "model.keras")

    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"\0" * 64)
    with pytest.raises(TrainingError, match=f"--init_from {tflite}: .*needs a Keras model"):
        fine_tuning.load_source(str(tflite))
    with pytest.raises(TrainingError, match="--init_from no_such_model: no such file"):
        fine_tuning.load_source("no_such_model")


def test_fine_tuning_defaults_train_the_full_network_for_fewer_epochs():
    scratch = TrainConfig()
    tuned = TrainConfig(init_from="enet_camvid")
    assert (scratch.stages, scratch.epochs, scratch.learning_rate) == ("both", 300, 5e-4)
    assert (tuned.stages, tuned.epochs) == ("full", 100)
    assert tuned.learning_rate == training.config.FINE_TUNING_DEFAULTS["learning_rate"]
    explicit = TrainConfig(init_from="enet_camvid", stages="both", epochs=7, learning_rate=1e-3)
    assert (explicit.stages, explicit.epochs, explicit.learning_rate) == ("both", 7, 1e-3)


def copy_preset(directory):
    source = os.path.join(REPO, "tf_enet", "presets", "enet_camvid")
    for name in (artifacts.MODEL_FILE, artifacts.CONFIG_FILE):
        os.makedirs(directory, exist_ok=True)
        shutil.copy(os.path.join(source, name), directory)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_copied_preset_is_never_trained_over_or_deleted(tmp_path, overwrite):
    copy_preset(tmp_path / "mine")
    config = TrainConfig(dataset="folder", checkpoint_dir=str(tmp_path / "mine"))
    with pytest.raises(TrainingError) as error:
        training.check_checkpoint_dir(config, overwrite=overwrite)
    message = str(error.value)
    assert "holds a trained model (model.keras) without the training history" in message
    assert f"--init_from {tmp_path / 'mine'} and another --checkpoint_dir" in message
    assert "--overwrite" not in message
    assert sorted(os.listdir(tmp_path / "mine")) == ["config.json", "model.keras"]


def test_init_from_inside_the_checkpoint_dir_is_refused(tmp_path):
    run = tmp_path / "run"
    copy_preset(run / "pretrained")
    for init_from in (str(run), str(run / "pretrained"), str(run / "pretrained" / "model.keras")):
        config = TrainConfig(init_from=init_from, checkpoint_dir=str(run))
        with pytest.raises(TrainingError, match="lies inside --checkpoint_dir"):
            training.check_checkpoint_dir(config, overwrite=True)
    beside = TrainConfig(init_from=str(run / "pretrained"), checkpoint_dir=str(tmp_path / "new"))
    assert training.check_checkpoint_dir(beside, overwrite=False) is False


@pytest.mark.slow
def test_a_fine_tuned_run_starts_from_the_source_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=8, num_val=4, size=32)
    # Built before the run's network, so with other random weights.
    source = tf_enet.build_enet(7, **SMALL)
    source.save(tmp_path / "source.keras")
    config = TrainConfig(
        dataset="folder",
        data_dir=data_dir,
        checkpoint_dir=str(tmp_path / "run"),
        init_from=str(tmp_path / "source.keras"),
        height=32,
        width=32,
        batch_size=4,
        epochs=1,
        logit_adjustment="off",
        verbose=0,
        **SMALL,
    )
    results = training.train(config)
    assert set(results) >= {"full"} and "encoder" not in results
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["init_from"] == {
        "model": str(tmp_path / "source.keras"),
        "path": str(tmp_path / "source.keras"),
        "class_names": None,
    }
    assert saved["train"]["init_from"] == str(tmp_path / "source.keras")
    # Two optimizer steps of 5e-4 move a weight of the source by 1e-3 at
    # most; a network that ignored the source would be nowhere near it.
    trained = tf_enet.ENet.from_preset(str(tmp_path / "run"))
    a = source.get_layer("bottleneck2_1_conv").kernel.numpy()
    b = trained.get_layer("bottleneck2_1_conv").kernel.numpy()
    assert np.abs(a - b).max() < 0.002 < 0.02 < np.abs(a).mean()
