"""Trains ENet: `python train.py --dataset camvid` (same as `tf-enet-train`)."""

from tf_enet.cli.train import main

if __name__ == "__main__":
    main()
