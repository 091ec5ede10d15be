"""Prints the README's CamVid results table from an evaluate.py JSON.

    python evaluate.py --dataset camvid --split val --model checkpoints/enet_camvid \
        --output_json checkpoints/enet_camvid/val_results.json
    python tools/results_table.py --results checkpoints/enet_camvid/val_results.json

Our per-class IoU and accuracies beside the published figures: the paper's
CamVid test results (Paszke et al. 2016, CamVid table: per-class accuracy,
class-average accuracy and class IoU) and the best published PyTorch
ENet's mean IoU (val and test).
"""

import json

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "results",
    "checkpoints/enet_camvid/val_results.json",
    "JSON written by evaluate.py --output_json.",
)

# Paszke et al. 2016, CamVid test: per-class accuracy.
PAPER_CLASS_ACCURACY = {
    "Building": 74.7,
    "Tree": 77.8,
    "Sky": 95.1,
    "Car": 82.4,
    "SignSymbol": 51.0,
    "Road": 95.1,
    "Pedestrian": 67.2,
    "Fence": 51.7,
    "Pole": 35.0,
    "Pavement": 86.7,
    "Bicyclist": 34.1,
}
PAPER = {"class_accuracy": 68.3, "mean_iou": 51.3}
PYTORCH_PORT = {"val_mean_iou": 65.2, "test_mean_iou": 52.1}


def main(argv):
    del argv
    with open(FLAGS.results, encoding="utf-8") as f:
        results = json.load(f)
    split = results["split"]
    print(f"| class | IoU (ours, {split}) | accuracy (ours, {split}) | accuracy (paper, test) |")
    print("|---|---|---|---|")
    for name in results["class_names"]:
        print(
            f"| {name} | {100 * results['per_class_iou'][name]:.1f} "
            f"| {100 * results['per_class_accuracy'][name]:.1f} "
            f"| {PAPER_CLASS_ACCURACY.get(name, float('nan')):.1f} |"
        )
    print(
        f"| **mean IoU** | **{100 * results['mean_iou']:.1f}** | | "
        f"{PAPER['mean_iou']:.1f} (paper, test); PyTorch ENet "
        f"{PYTORCH_PORT['val_mean_iou']:.1f} val / "
        f"{PYTORCH_PORT['test_mean_iou']:.1f} test |"
    )
    print(f"| global accuracy | | {100 * results['global_accuracy']:.1f} | |")
    print(
        f"| class-average accuracy | | {100 * results['class_accuracy']:.1f} "
        f"| {PAPER['class_accuracy']:.1f} |"
    )


if __name__ == "__main__":
    app.run(main)
