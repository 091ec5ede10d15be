"""Segments every image of file patterns with Apache Beam (`python -m tf_enet.beam`).

For every input `<stem>.<ext>` writes into --output_dir what
`tf-enet-predict` writes, byte for byte:
    <stem>_labels.png    class ids (uint8), the input's size
    <stem>_color.png     the classes painted with the model's palette
    <stem>_overlay.jpg   the colours blended over the image (--alpha)
and summary.json: the images segmented, the pixels of each class over all
of them, the files that could not be decoded and the non-image files of
input directories (a bad file never fails the pipeline).

--images takes glob patterns (Beam's: `*` within a directory, `**`
across), files or directories, local or on any file system Beam has
(gs://, s3://, ...). Every other flag is one of Beam's pipeline options and
goes to Beam: --runner (DirectRunner by default; DataflowRunner,
FlinkRunner, SparkRunner, ...), --direct_num_workers,
--direct_running_mode, --project, --region, --temp_location, ...; a flag
that is neither is refused before anything runs. Files are written under
temporary names and renamed when complete; rerunning into the same
--output_dir replaces the outputs.

Examples:
  python -m tf_enet.beam --images 'data/samples/*.jpg' --output_dir labels/
  python -m tf_enet.beam --images 'gs://bucket/frames/*.jpg' \\
      --output_dir gs://bucket/labels/ --model gs://bucket/enet_camvid.tflite \\
      --runner DataflowRunner --project my-project --region europe-west1 \\
      --temp_location gs://bucket/tmp/ --extra_packages dist/tf_enet-0.1.0-py3-none-any.whl
"""

import argparse
import contextlib
import logging
import sys
import time

# Both modules import only the standard library, so --help stays fast.
from tf_enet.artifacts import DEFAULT_PRESET as DEFAULT_MODEL
from tf_enet.defaults import OUTPUTS, install_hint


def _outputs(value):
    names = [name for name in value.split(",") if name]
    if not names or not set(names) <= set(OUTPUTS):
        raise argparse.ArgumentTypeError(
            f"expected some of {','.join(OUTPUTS)} separated by commas; received {value!r}"
        )
    return names


def _alpha(value):
    alpha = float(value)
    if not 0 <= alpha <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1]; received {value}")
    return alpha


def _positive(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; received {value}")
    return number


def parser():
    """The command's own flags; the rest of the command line goes to Beam."""
    # argparse, not absl like the other commands: Beam's pipeline options are
    # argparse's, and parse_known_args hands them the rest of the line.
    result = argparse.ArgumentParser(
        prog="python -m tf_enet.beam",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument(
        "--images",
        action="extend",
        nargs="+",
        required=True,
        help="Glob patterns, files or directories (several, or repeat the flag).",
    )
    result.add_argument(
        "--output_dir", required=True, help="Where the outputs go (created if missing)."
    )
    result.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="Preset name, checkpoint directory, .keras/.tflite/.onnx file on the "
        "workers, or a .tflite/.onnx file on gs://, s3://, ... "
        f"(default: {DEFAULT_MODEL}).",
    )
    result.add_argument(
        "--outputs",
        type=_outputs,
        default=list(OUTPUTS),
        help=f"Which of {','.join(OUTPUTS)} to write (default: all).",
    )
    result.add_argument(
        "--alpha", type=_alpha, default=0.5, help="Weight of the class colours in overlays."
    )
    result.add_argument("--height", type=_positive, help="Run the model at this height.")
    result.add_argument("--width", type=_positive, help="Run the model at this width.")
    result.add_argument(
        "--batch_size", type=_positive, default=4, help="Most images per model call."
    )
    result.add_argument(
        "--verbose", action="store_true", help="Show Beam's and the workers' log messages."
    )
    result.add_argument(
        "--large_model",
        action="store_true",
        help="One model per worker machine, shared by its processes (saves memory).",
    )
    return result


def main(argv=None):
    """Parses the command line, runs the pipeline, prints a summary; returns the exit status."""
    args, beam_args = parser().parse_known_args(argv)
    if (args.height is None) != (args.width is None):
        print("error: give both --height and --width, or neither.", file=sys.stderr)
        return 2
    if not args.verbose:
        # Beam logs notices about optional clients (from its import on) and,
        # for a failed pipeline, each worker's traceback; the one line
        # printed below says what failed.
        logging.getLogger().setLevel(logging.CRITICAL)
    try:
        import apache_beam as beam  # pylint: disable=import-outside-toplevel
    except ImportError:
        print(
            f"error: python -m tf_enet.beam needs Apache Beam: {install_hint('beam')}.",
            file=sys.stderr,
        )
        return 1
    from apache_beam.options.pipeline_options import (  # pylint: disable=import-outside-toplevel
        PipelineOptions,
        StandardOptions,
    )

    from tf_enet import beam as tf_enet_beam  # pylint: disable=import-outside-toplevel
    from tf_enet import cli, errors  # pylint: disable=import-outside-toplevel

    options = PipelineOptions(beam_args)
    beam_args_given = options.get_all_options(drop_default=True)
    unknown = sorted(
        set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())
    )
    if unknown:
        # Beam would drop them with a warning; a mistyped flag must not
        # silently run a whole corpus with a default.
        print(
            f"error: unknown flag --{unknown[0]}: neither this command's (see --help) "
            "nor one of Beam's pipeline options.",
            file=sys.stderr,
        )
        return 2
    local = options.view_as(StandardOptions).runner in (None, "DirectRunner")
    if local and not args.verbose and "default_sdk_harness_log_level" not in beam_args_given:
        # DirectRunner's worker processes share this terminal and log every
        # step at INFO; remote runners keep their workers' logs.
        options = PipelineOptions([*beam_args, "--default_sdk_harness_log_level=CRITICAL"])
    input_size = (args.height, args.width) if args.height else None
    try:
        # Everything a run needs is checked before it starts.
        tf_enet_beam.check_inputs(args.images)
        tf_enet_beam.check_output_dir(args.output_dir)
        with contextlib.nullcontext() if args.verbose else cli.filtered_stderr():
            segment = tf_enet_beam.SegmentImages(
                args.images,
                args.output_dir,
                model=args.model,
                outputs=args.outputs,
                alpha=args.alpha,
                input_size=input_size,
                batch_size=args.batch_size,
                large_model=args.large_model,
            )
        removed = tf_enet_beam.remove_temporary_files(args.output_dir)
    except (errors.TfEnetError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if removed:
        print(f"note: removed {removed} temporary files an interrupted run left.")
    start = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | "SegmentImages" >> segment
    try:
        state = pipeline.run().wait_until_finish()
    except Exception as error:  # The runners raise many error types.
        message = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(
            f"error: the pipeline failed: {message} (--verbose shows Beam's log).",
            file=sys.stderr,
        )
        return 1
    seconds = time.monotonic() - start
    if state not in (None, beam.runners.runner.PipelineState.DONE):
        print(f"error: the pipeline ended in state {state}.", file=sys.stderr)
        return 1
    summary = tf_enet_beam.read_summary(args.output_dir)
    images = summary["images"]
    print(
        f"Segmented {images} images into {args.output_dir} in {seconds:.1f} s "
        f"({images / max(seconds, 1e-9):.1f} images/s with start-up, reading and writing)."
    )
    for kind in ("unreadable", "skipped"):
        if summary[kind]:
            print(
                f"note: {len(summary[kind])} {kind} files, listed in "
                f"{args.output_dir.rstrip('/')}/{tf_enet_beam.SUMMARY_FILE}."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
