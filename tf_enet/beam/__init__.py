"""Segmenting a corpus with Apache Beam (the `[beam]` extra).

    python -m tf_enet.beam --images 'gs://bucket/frames/*.jpg' \
        --output_dir gs://bucket/labels --runner DirectRunner

Modules:
    handler    `ENetModelHandler`, tf_enet models in Beam's RunInference
    pipeline   `SegmentImages`, the pipeline `python -m tf_enet.beam` runs
"""

from tf_enet.beam.handler import ENetModelHandler, local_model_path
from tf_enet.beam.pipeline import (
    SUMMARY_FILE,
    SegmentImages,
    check_inputs,
    check_output_dir,
    input_patterns,
    read_summary,
    remove_temporary_files,
    write_file,
)

__all__ = [
    "ENetModelHandler",
    "SUMMARY_FILE",
    "SegmentImages",
    "check_inputs",
    "check_output_dir",
    "input_patterns",
    "local_model_path",
    "read_summary",
    "remove_temporary_files",
    "write_file",
]
