"""Images per second of `python -m tf_enet.beam` (DirectRunner) against predict.py.

Writes a folder of generated images (street-scene sized by default), then
times, on that folder and the same model, each command as a user runs it,
start-up included:

    predict      python -m tf_enet predict --images DIR
    beam, 1      python -m tf_enet.beam ... --direct_running_mode multi_processing
                     --direct_num_workers 1
    beam, 2      ... --direct_num_workers 2

and prints a Markdown table: wall seconds (the fastest of --repeats runs)
and images per second. Every command writes all three outputs.

    python benchmarks/beam_pipeline.py --images 200 --height 360 --width 480
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_images(directory, count, height, width):
    """`count` JPEGs of smooth random colour regions (what the model sees as scenes)."""
    rng = np.random.RandomState(0)
    for i in range(count):
        small = rng.randint(0, 256, (6, 8, 3)).astype(np.uint8)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(os.path.join(directory, f"frame_{i:05d}.jpg"), image)


def commands(images, model, workers):
    """(name, argv without --output_dir) of each command timed."""
    shared = ["--images", images, "--model", model]
    yield "predict.py", [sys.executable, "-m", "tf_enet", "predict", *shared]
    for count in workers:
        yield (
            f"Beam DirectRunner, {count} worker{'s' if count > 1 else ''}",
            [sys.executable, "-m", "tf_enet.beam", *shared]
            + ["--direct_running_mode", "multi_processing", "--direct_num_workers", str(count)],
        )


def wall_seconds(argv, repeats):
    """The fastest wall time of `repeats` runs; exits on a failed run."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"error: {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
        best = min(best, seconds)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="Images in the folder.")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--model", default="enet_camvid")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2, help="Runs per command; the fastest.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        images = os.path.join(work, "images")
        os.mkdir(images)
        write_images(images, args.images, args.height, args.width)
        print(
            f"{args.images} images of {args.height}x{args.width}, model {args.model}, "
            f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"fastest of {args.repeats}; wall time includes start-up.\n"
        )
        print("| command | seconds | images/s |\n|---|---|---|")
        for index, (name, argv) in enumerate(commands(images, args.model, args.workers)):
            output = os.path.join(work, f"out{index}")
            seconds = wall_seconds(argv + ["--output_dir", output], args.repeats)
            print(f"| {name} | {seconds:.1f} | {args.images / seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
