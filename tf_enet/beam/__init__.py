"""Segmenting a corpus with Apache Beam (the `[beam]` extra).

    python -m tf_enet.beam --images 'gs://bucket/frames/*.jpg' \
        --output_dir gs://bucket/labels --runner DirectRunner

Modules:
    handler    `ENetModelHandler`, tf_enet models in Beam's RunInference
    pipeline   `SegmentImages`, the pipeline `python -m tf_enet.beam` runs

The names below load with their module on first use: `python -m
tf_enet.beam` imports this package before its `__main__`, which answers
`--help` and bad flags without loading Beam or the model runtime.
"""

import importlib

_MODULES = {
    "ENetModelHandler": "handler",
    "local_model_path": "handler",
    "SUMMARY_FILE": "pipeline",
    "SegmentImages": "pipeline",
    "check_inputs": "pipeline",
    "check_output_dir": "pipeline",
    "input_patterns": "pipeline",
    "read_summary": "pipeline",
    "remove_temporary_files": "pipeline",
    "write_file": "pipeline",
}

__all__ = sorted(_MODULES)


def __getattr__(name):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)


def __dir__():
    return sorted(set(globals()) | set(_MODULES))
