"""Segments images or a video: `python predict.py --images data/samples/`
(same as `tf-enet-predict`)."""

from tf_enet.cli.predict import main

if __name__ == "__main__":
    main()
