"""Scores a model on a labelled split: `python evaluate.py --split val`
(same as `tf-enet-evaluate`)."""

from tf_enet.cli.evaluate import main

if __name__ == "__main__":
    main()
