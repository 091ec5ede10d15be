"""Exports a trained model for serving: `python export.py --format tflite`
(same as `tf-enet-export`)."""

from tf_enet.cli.export import main

if __name__ == "__main__":
    main()
