"""The one base class of the errors tf_enet raises for problems a user can fix.

Every such error subclasses `TfEnetError`, so a caller (the commands, a
service wrapping the library) catches them all with one clause and lets
real bugs (a `TypeError` from a wrong call, an `AssertionError`) surface:

    try:
        predictor = tf_enet.inference.load_predictor(path)
    except tf_enet.errors.TfEnetError as error:
        print(error)  # One line: what was wrong, where, and the fix.

The subclasses live beside the code that raises them (`DatasetError` in
`tf_enet.data`, `ModelError` in `tf_enet.inference`, `ExportError` in
`tf_enet.exporting`, `TrainingError` in `tf_enet.training`, `DownloadError`
in `tf_enet.data.download`); each also keeps its builtin base (`ValueError`
or `RuntimeError`) so code written against those still catches it.

This module imports nothing, so any module (including the TensorFlow-free
runtime and the command lines' flag parsing) can depend on it.
"""


class TfEnetError(Exception):
    """A problem a user can act on; the message names the input and the fix."""
