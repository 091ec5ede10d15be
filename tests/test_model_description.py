"""`artifacts.ModelDescription`: the typed reading of a model's configuration."""

import json

from tf_enet import artifacts


def test_a_run_configuration_and_an_export_description_are_read_typed(tmp_path):
    config = {
        "dataset": {"class_names": ["a", "b"]},
        "train": {"height": 360, "width": 480, "dataset": "folder", "val_fraction": 0.1},
        "export": {"input_size": [360, 480], "quantize": "none", "source_sha256": "ab" * 32},
    }
    path = tmp_path / "model_360x480.tflite.json"
    path.write_text(json.dumps(config))
    assert artifacts.read_description(str(path)) == artifacts.ModelDescription(
        training_size=(360, 480),
        dataset="folder",
        val_fraction=0.1,
        input_size=(360, 480),
        quantization="none",
        source_sha256="ab" * 32,
    )


def test_unrecorded_or_malformed_entries_are_none():
    assert artifacts.ModelDescription.from_config(None) == artifacts.ModelDescription()
    for train in ({"height": 360}, {"height": 0, "width": 480}, {"height": True, "width": 4}):
        assert artifacts.ModelDescription.from_config({"train": train}).training_size is None
    assert artifacts.ModelDescription.from_config({"train": [], "export": 3}).input_size is None
