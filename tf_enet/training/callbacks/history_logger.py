"""The per-epoch history of a run as CSV, stable across resumes."""

import csv

import keras

from tf_enet import artifacts
from tf_enet.training.failures import writing
from tf_enet.training.run_directory import csv_rows


class HistoryLogger(keras.callbacks.CSVLogger):
    """Appends each epoch's logs to a CSV file, keeping its columns.

    Keras's CSVLogger takes the columns from the first epoch of each `fit`;
    when a resumed run starts with an epoch that does not validate, they
    would differ from the header already in the file and put values under
    the wrong names. Missing values are written as "NA". Columns written by
    earlier versions under other names of a metric (`val_miou`) are renamed
    (`artifacts.renamed_metric`) when the file is continued.

    Args:
        filename: str. The CSV file; created with a header if missing.
    """

    def __init__(self, filename):
        super().__init__(filename, append=True)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        header = csv_rows(self.filename)[:1]
        if header and header[0][:1] == ["epoch"]:
            self.keys = [artifacts.renamed_metric(k) for k in header[0][1:]]
            if self.keys != header[0][1:]:
                self._rename_columns()

    def on_epoch_end(self, epoch, logs=None):
        with writing(self.filename):
            super().on_epoch_end(epoch, logs)

    def _rename_columns(self):
        self.csv_file.close()
        rows = csv_rows(self.filename)
        rows[0] = ["epoch", *self.keys]

        def write(tmp_path):
            with open(tmp_path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(rows)

        artifacts.write_atomically(self.filename, write)
        self.csv_file = open(self.filename, "a", encoding="utf-8")
