"""One base class for the errors a user can act on (`tf_enet.errors`)."""

import pytest

from tf_enet import data, errors, exporting, inference
from tf_enet.data import download
from tf_enet.training import TrainingError, distribute


def _bad_dataset(tmp_path):
    data.get_dataset("camvid", str(tmp_path / "missing"))


def _bad_model(tmp_path):
    inference.resolve_model_path(str(tmp_path / "missing.keras"))


def _bad_export_size(tmp_path):
    exporting.export_tflite(None, str(tmp_path / "m.tflite"), input_size=(0, 4))


def _bad_download(tmp_path):
    download.fetch((tmp_path / "missing.zip").as_uri(), str(tmp_path / "out.zip"))


def _bad_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "not json")
    distribute.make_strategy("multi_worker")


@pytest.mark.parametrize(
    "cause, expected",
    [
        (_bad_dataset, data.DatasetError),
        (_bad_model, inference.ModelError),
        (_bad_export_size, exporting.ExportError),
        (_bad_download, download.DownloadError),
        (_bad_cluster, TrainingError),
    ],
)
def test_one_except_clause_catches_every_user_error(cause, expected, tmp_path, monkeypatch):
    args = (tmp_path, monkeypatch) if cause is _bad_cluster else (tmp_path,)
    with pytest.raises(errors.TfEnetError) as caught:
        cause(*args)
    assert type(caught.value) is expected


@pytest.mark.parametrize(
    "error, builtin",
    [
        (data.DatasetError, ValueError),
        (inference.ModelError, ValueError),
        (exporting.ExportError, ValueError),
        (download.DownloadError, RuntimeError),
        (TrainingError, RuntimeError),
    ],
)
def test_errors_keep_their_builtin_base(error, builtin):
    # Callers that caught ValueError or RuntimeError before still do.
    assert issubclass(error, builtin)
