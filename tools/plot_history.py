"""Plots a run's training curves (loss and mIoU per epoch) to a PNG.

    python tools/plot_history.py --checkpoint_dir checkpoints/enet_camvid \
        --output docs/enet_camvid_curves.png

Reads `history.csv` of both stages (`encoder/history.csv`, then the full
network's) and draws training loss, training mIoU and validation mIoU
against the epoch, the encoder stage first. Needs matplotlib
(`pip install -e ".[docs]"`).
"""

import csv
import os

from absl import app, flags

from tf_enet.artifacts import renamed_metric

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", "checkpoints/enet_camvid", "Run directory.")
flags.DEFINE_string("output", "docs/enet_camvid_curves.png", "PNG to write.")


def read_history(path):
    """Rows of a Keras CSVLogger file as dicts of floats, one per epoch.

    Columns of earlier versions (`miou`, `val_miou`) read under their
    current names.
    """
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = {}
        for row in csv.DictReader(f):
            # A resumed run may log an epoch twice; the last one counts.
            rows[int(row["epoch"])] = {
                renamed_metric(k): float(v) for k, v in row.items() if v not in ("", None, "NA")
            }
    return [rows[epoch] for epoch in sorted(rows)]


def main(argv):
    del argv
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [
        (
            "encoder (1/8 labels)",
            read_history(os.path.join(FLAGS.checkpoint_dir, "encoder", "history.csv")),
        ),
        ("full network", read_history(os.path.join(FLAGS.checkpoint_dir, "history.csv"))),
    ]
    if not any(rows for _, rows in stages):
        raise app.UsageError(f"No history.csv under {FLAGS.checkpoint_dir}.")
    figure, (loss_axis, iou_axis) = plt.subplots(1, 2, figsize=(11, 4))
    offset = 0
    for name, rows in stages:
        if not rows:
            continue
        epochs = [offset + r["epoch"] + 1 for r in rows]
        loss_axis.plot(epochs, [r["loss"] for r in rows], label=f"train loss, {name}")
        if any("val_loss" in r for r in rows):
            loss_axis.plot(
                [e for e, r in zip(epochs, rows) if "val_loss" in r],
                [r["val_loss"] for r in rows if "val_loss" in r],
                label=f"val loss, {name}",
            )
        iou_axis.plot(epochs, [100 * r["mean_iou"] for r in rows], label=f"train mIoU, {name}")
        iou_axis.plot(
            [e for e, r in zip(epochs, rows) if "val_mean_iou" in r],
            [100 * r["val_mean_iou"] for r in rows if "val_mean_iou" in r],
            label=f"val mIoU, {name}",
        )
        offset = epochs[-1]
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("weighted cross-entropy + L2")
    iou_axis.set_xlabel("epoch")
    iou_axis.set_ylabel("mIoU (%)")
    for axis in (loss_axis, iou_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"ENet training, {FLAGS.checkpoint_dir}")
    figure.tight_layout()
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    figure.savefig(FLAGS.output, dpi=100)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
