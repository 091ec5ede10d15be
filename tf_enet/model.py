"""ENet: the encoder-decoder network of Paszke et al. (2016) as Keras models.

Reference: Paszke, Chaurasia, Kim, Culurciello, "ENet: A Deep Neural Network
Architecture for Real-Time Semantic Segmentation", arXiv:1606.02147.

Every layer is named after the paper's Table 1 (`initial_block`,
`bottleneck1_0`, `bottleneck2_3_asymmetric`, ...), so the encoder trained in
the paper's first stage loads into the full network by layer name.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from tf_enet import artifacts
from tf_enet.layers import (
    BatchNormalization,
    ChannelPadding,
    CropToReference,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    PadToMultiple,
)

# Pixel statistics the model normalises its [0, 255] RGB input with (ImageNet
# mean and standard deviation), so exported graphs take raw pixels.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)

# Torch's BatchNorm momentum 0.1 (the paper's framework) is Keras's 0.9.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5
_ACTIVATIONS = ("prelu", "relu")

# Stages 2 and 3 of Table 1 after bottleneck2.0: (kind, dilation or kernel).
_DILATED_STAGE = (
    ("regular", 1),
    ("dilated", 2),
    ("asymmetric", 5),
    ("dilated", 4),
    ("regular", 1),
    ("dilated", 8),
    ("asymmetric", 5),
    ("dilated", 16),
)

# The stride between the input and the encoder's output.
OUTPUT_STRIDE = 8


@keras.saving.register_keras_serializable(package="tf_enet")
class ENet(keras.Model):
    """A functional `keras.Model` whose `predict` runs arrays without tf.data.

    `keras.Model.predict` builds a tf.data pipeline and an iterator for every
    call: about 50 ms on 2 CPU cores, as long as ENet itself takes for a
    360x480 image. For images held in memory (a NumPy array or a tensor)
    `predict` cuts the batches itself and runs each with `predict_on_batch`,
    through the same compiled predict function, progress bar and callbacks.
    Datasets, generators and `steps` take Keras's loop unchanged.

    `build_enet` and `build_enet_encoder` return this class, and `.keras`
    files saved from it load as it once `tf_enet` is imported.
    """

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        in_memory = isinstance(x, np.ndarray) or tf.is_tensor(x)
        if not in_memory or steps is not None or len(x.shape) != 4:
            return super().predict(
                x,
                batch_size=batch_size,
                verbose=verbose,
                steps=steps,
                callbacks=callbacks,
            )
        if x.shape[0] == 0:
            raise ValueError(
                f"`predict` received an empty array of shape {tuple(x.shape)}; "
                "expected at least one image."
            )
        batch_size = batch_size or 32
        starts = range(0, int(x.shape[0]), batch_size)
        if not isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = keras.callbacks.CallbackList(
                callbacks,
                add_progbar=verbose != 0,
                verbose=verbose,
                epochs=1,
                steps=len(starts),
                model=self,
            )
        self.stop_predicting = False
        callbacks.on_predict_begin()
        outputs = []
        for step, start in enumerate(starts):
            callbacks.on_predict_batch_begin(step)
            batch_outputs = self.predict_on_batch(x[start : start + batch_size])
            outputs.append(batch_outputs)
            callbacks.on_predict_batch_end(step, {"outputs": batch_outputs})
            if self.stop_predicting:
                break
        callbacks.on_predict_end()
        return np.concatenate(outputs)

    @classmethod
    def from_preset(cls, preset):
        """Loads a pretrained ENet: a shipped preset or a preset directory.

        The model maps RGB images in [0, 255], `[batch, height, width, 3]`,
        to logits `[batch, height, width, num_classes]`; the argmax over the
        last axis gives the class ids. What the classes are called and
        painted with is in `tf_enet.presets.load_config(preset)`.

        ```python
        model = tf_enet.ENet.from_preset("enet_camvid")
        classes = np.argmax(model.predict(images), axis=-1)
        ```

        Args:
            preset: str. A name from `tf_enet.list_presets()`, or a
                directory holding `model.keras` and `config.json` (as
                `tf_enet.presets.save_preset` writes).

        To fine-tune it on other classes (`train.py --init_from`, see the
        README), copy its weights into a `build_enet` model (same options;
        its batch norms train faster on CPUs), which keeps a fresh
        classifier (`fullconv`) for its own number of classes:

        ```python
        model = tf_enet.build_enet(3)
        pretrained = tf_enet.ENet.from_preset("enet_camvid")
        tf_enet.transfer_weights(pretrained, model, skip_mismatched=True)
        ```

        Returns:
            ENet, uncompiled, with the preset's trained weights.

        Raises:
            ValueError: `preset` is neither a shipped name (the message
                lists them) nor a preset directory, or its `model.keras` is
                not a valid ENet model.
        """
        path = os.path.join(artifacts.preset_path(preset), artifacts.MODEL_FILE)
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as err:  # Keras raises many types for a bad file.
            # The first line only: Keras may append the whole model config.
            reason = (str(err).splitlines() or [type(err).__name__])[0]
            raise ValueError(
                f"Preset model {path} is not a valid Keras model file: "
                f"{reason.split(' Full object config:')[0][:300]}"
            ) from None
        if not isinstance(model, cls):
            raise ValueError(
                f"Preset model {path} holds a {type(model).__name__}; expected a {cls.__name__}."
            )
        return model


@dataclasses.dataclass(frozen=True)
class ENetConfig:
    """Architecture options of ENet; the defaults are the paper's network.

    Args:
        num_classes: int. Number of output classes (logit channels).
        num_initial_blocks: int. Number of initial blocks. The first halves
            the resolution as in the paper; each extra one is a 3x3 conv that
            keeps resolution and width (16 channels).
        stage_two_repeat: int. How many times the dilated/asymmetric stage
            (stage 2 after bottleneck2.0, then stage 3) runs; 2 is the paper.
        skip_connections: bool. Add encoder features to the decoder at
            matching resolution (stage 1's output after bottleneck4.0, the
            initial block's after bottleneck5.0).
        encoder_activation: str. "prelu" (the paper) or "relu".
        decoder_activation: str. "relu" (the paper) or "prelu".
        stage_one_dropout: float. Spatial dropout rate of stage 1 (0.01).
        dropout: float. Spatial dropout rate of the later encoder stages
            (0.1).
    """

    num_classes: int
    num_initial_blocks: int = 1
    stage_two_repeat: int = 2
    skip_connections: bool = False
    encoder_activation: str = "prelu"
    decoder_activation: str = "relu"
    stage_one_dropout: float = 0.01
    dropout: float = 0.1

    def __post_init__(self):
        def fail(name, expected):
            raise ValueError(f"`{name}` must be {expected}; received {getattr(self, name)!r}.")

        def is_int(value):
            return isinstance(value, int) and not isinstance(value, bool)

        if not is_int(self.num_classes) or self.num_classes < 1:
            fail("num_classes", "a positive integer")
        if not is_int(self.num_initial_blocks) or self.num_initial_blocks < 1:
            fail("num_initial_blocks", "an integer >= 1")
        if not is_int(self.stage_two_repeat) or self.stage_two_repeat < 1:
            fail("stage_two_repeat", "an integer >= 1")
        if not isinstance(self.skip_connections, bool):
            fail("skip_connections", "True or False")
        for name in ("encoder_activation", "decoder_activation"):
            if getattr(self, name) not in _ACTIVATIONS:
                fail(name, f"one of {_ACTIVATIONS}")
        for name in ("stage_one_dropout", "dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(name, "a number in [0, 1)")
            if not 0 <= value < 1:
                fail(name, "a number in [0, 1)")

    def to_dict(self):
        return dataclasses.asdict(self)


def _activation(kind, name):
    if kind == "prelu":
        # One slope per channel, shared over space: works at any image size.
        return keras.layers.PReLU(shared_axes=[1, 2], name=name)
    return keras.layers.ReLU(name=name)


def _batch_norm(name):
    return BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name)


def _bn_activation(x, prefix, activation):
    """Batch norm then activation, named `<prefix>_bn`, `<prefix>_activation`."""
    x = _batch_norm(f"{prefix}_bn")(x)
    return _activation(activation, f"{prefix}_activation")(x)


def _conv(filters, kernel_size, name, strides=1, dilation_rate=1):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        dilation_rate=dilation_rate,
        use_bias=False,
        name=name,
    )


def _initial_block(x, name):
    """3x3 stride-2 conv (13 filters) beside 2x2 max pooling, 16 channels."""
    conv = _conv(13, 3, strides=2, name=f"{name}_conv")(x)
    pool = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = keras.layers.Concatenate(name=f"{name}_concat")([conv, pool])
    x = _batch_norm(f"{name}_bn")(x)
    return _activation("prelu", f"{name}_activation")(x)


def _extra_initial_block(x, name):
    x = _conv(16, 3, name=f"{name}_conv")(x)
    x = _batch_norm(f"{name}_bn")(x)
    return _activation("prelu", f"{name}_activation")(x)


def _bottleneck(
    x,
    filters,
    name,
    activation,
    dropout,
    kind="regular",
    dilation=1,
    asymmetric=5,
):
    """Regular, dilated or asymmetric bottleneck with an identity shortcut."""
    internal = filters // 4
    shortcut = x
    x = _conv(internal, 1, name=f"{name}_projection")(x)
    x = _bn_activation(x, f"{name}_projection", activation)
    if kind == "asymmetric":
        x = _conv(internal, (asymmetric, 1), name=f"{name}_conv_{asymmetric}x1")(x)
        x = _conv(internal, (1, asymmetric), name=f"{name}_conv_1x{asymmetric}")(x)
    else:
        x = _conv(internal, 3, dilation_rate=dilation, name=f"{name}_conv")(x)
    x = _bn_activation(x, f"{name}_conv", activation)
    x = _conv(filters, 1, name=f"{name}_expansion")(x)
    x = _batch_norm(f"{name}_expansion_bn")(x)
    x = keras.layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return _activation(activation, f"{name}_activation")(x)


def _downsampling_bottleneck(x, filters, name, activation, dropout):
    """Bottleneck that halves the resolution; returns (outputs, argmax)."""
    internal = filters // 4
    main, argmax = MaxPoolingWithArgmax2D(name=f"{name}_pool")(x)
    main = ChannelPadding(filters, name=f"{name}_channel_padding")(main)
    x = _conv(internal, 2, strides=2, name=f"{name}_projection")(x)
    x = _bn_activation(x, f"{name}_projection", activation)
    x = _conv(internal, 3, name=f"{name}_conv")(x)
    x = _bn_activation(x, f"{name}_conv", activation)
    x = _conv(filters, 1, name=f"{name}_expansion")(x)
    x = _batch_norm(f"{name}_expansion_bn")(x)
    x = keras.layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
    x = keras.layers.Add(name=f"{name}_add")([main, x])
    return _activation(activation, f"{name}_activation")(x), argmax


def _upsampling_bottleneck(x, argmax, filters, name, activation):
    """Bottleneck that doubles the resolution with the encoder's indices."""
    internal = filters // 4
    main = _conv(filters, 1, name=f"{name}_main_conv")(x)
    main = _batch_norm(f"{name}_main_bn")(main)
    main = MaxUnpooling2D(name=f"{name}_unpool")([main, argmax])
    x = _conv(internal, 1, name=f"{name}_projection")(x)
    x = _bn_activation(x, f"{name}_projection", activation)
    x = keras.layers.Conv2DTranspose(
        internal,
        3,
        strides=2,
        padding="same",
        use_bias=False,
        name=f"{name}_transposed_conv",
    )(x)
    x = _bn_activation(x, f"{name}_conv", activation)
    x = _conv(filters, 1, name=f"{name}_expansion")(x)
    x = _batch_norm(f"{name}_expansion_bn")(x)
    x = keras.layers.Add(name=f"{name}_add")([main, x])
    return _activation(activation, f"{name}_activation")(x)


def _stage_name(repeat):
    """Stage numbers of the dilated stages: 2, 3, then 3b, 3c, ..."""
    if repeat < 2:
        return str(2 + repeat)
    return "3" + "abcdefghijklmnopqrstuvwxyz"[repeat - 1]


def _encoder(images, config):
    """Returns (features, stage-1 indices, stage-2 indices, skip features)."""
    x = keras.layers.Normalization(
        mean=PIXEL_MEAN,
        variance=[s * s for s in PIXEL_STD],
        name="normalization",
    )(images)
    x = PadToMultiple(OUTPUT_STRIDE, name="pad_to_multiple")(x)
    x = _initial_block(x, "initial_block")
    for i in range(2, config.num_initial_blocks + 1):
        x = _extra_initial_block(x, f"initial_block_{i}")
    initial_features = x

    act = config.encoder_activation
    x, argmax1 = _downsampling_bottleneck(x, 64, "bottleneck1_0", act, config.stage_one_dropout)
    for i in range(1, 5):
        x = _bottleneck(x, 64, f"bottleneck1_{i}", act, config.stage_one_dropout)
    stage_one_features = x

    x, argmax2 = _downsampling_bottleneck(x, 128, "bottleneck2_0", act, config.dropout)
    for repeat in range(config.stage_two_repeat):
        stage = _stage_name(repeat)
        for i, (kind, size) in enumerate(_DILATED_STAGE, start=1):
            name = f"bottleneck{stage}_{i}"
            if kind != "regular":
                name += f"_{kind}"
            x = _bottleneck(
                x,
                128,
                name,
                act,
                config.dropout,
                kind=kind,
                dilation=size if kind == "dilated" else 1,
                asymmetric=size,
            )
    return x, argmax1, argmax2, (initial_features, stage_one_features)


def _config_from(num_classes, options):
    try:
        return ENetConfig(num_classes=num_classes, **options)
    except TypeError:
        known = {f.name for f in dataclasses.fields(ENetConfig)} - {"num_classes"}
        unknown = sorted(set(options) - known)
        raise ValueError(
            f"Unknown ENet option(s) {unknown}; expected some of {sorted(known)}."
        ) from None


def build_enet(num_classes, *, name="enet", **options):
    """Builds ENet as a functional `keras.Model` (an `ENet`).

    The defaults give the paper's network (Table 1): about 0.36 M parameters
    for 12 classes. The model takes RGB images with pixel values in [0, 255]
    of any height and width (normalisation, padding to a multiple of 8 and
    cropping back happen inside), and returns per-pixel class logits.

    Args:
        num_classes: int. Number of classes.
        name: str. Name of the model.
        **options: The other fields of `ENetConfig`: `num_initial_blocks`,
            `stage_two_repeat`, `skip_connections`, `encoder_activation`,
            `decoder_activation`, `stage_one_dropout`, `dropout`.

    Returns:
        A `keras.Model` mapping `[batch, height, width, 3]` float32 images
        to `[batch, height, width, num_classes]` float32 logits.

    Raises:
        ValueError: An option is unknown or its value invalid; the message
            names it.
    """
    config = _config_from(num_classes, options)
    images = keras.Input(shape=(None, None, 3), name="images")
    x, argmax1, argmax2, skips = _encoder(images, config)
    initial_features, stage_one_features = skips

    act = config.decoder_activation
    x = _upsampling_bottleneck(x, argmax2, 64, "bottleneck4_0", act)
    if config.skip_connections:
        x = keras.layers.Add(name="skip4")([x, stage_one_features])
    for i in range(1, 3):
        x = _bottleneck(x, 64, f"bottleneck4_{i}", act, 0.0)
    x = _upsampling_bottleneck(x, argmax1, 16, "bottleneck5_0", act)
    if config.skip_connections:
        x = keras.layers.Add(name="skip5")([x, initial_features])
    x = _bottleneck(x, 16, "bottleneck5_1", act, 0.0)
    x = keras.layers.Conv2DTranspose(
        config.num_classes, 2, strides=2, padding="same", name="fullconv"
    )(x)
    logits = CropToReference(name="logits")([x, images])
    return ENet(images, logits, name=name)


def build_enet_encoder(num_classes, *, name="enet_encoder", **options):
    """Builds ENet's encoder with a 1x1 classifier, for the first stage.

    The paper first trains the encoder alone on labels downsampled 8x, then
    the whole network initialised from it; `transfer_weights` copies this
    model's layers into `build_enet`'s by name.

    Args:
        num_classes: int. Number of classes.
        name: str. Name of the model.
        **options: As for `build_enet` (the decoder options are checked
            but unused).

    Returns:
        A `keras.Model` mapping `[batch, height, width, 3]` images to
        `[batch, ceil(height / 8), ceil(width / 8), num_classes]` logits.
    """
    config = _config_from(num_classes, options)
    images = keras.Input(shape=(None, None, 3), name="images")
    x, _, _, _ = _encoder(images, config)
    logits = keras.layers.Conv2D(config.num_classes, 1, name="encoder_classifier")(x)
    return ENet(images, logits, name=name)


def transfer_weights(source, target, *, skip_mismatched=False):
    """Copies weights between models for every layer name they share.

    Keras's `load_weights(skip_mismatch=True)` reads a weights file into a
    model of the same structure; fine-tuning matches two different models
    (an encoder and the full network) by layer name.

    Args:
        source: `keras.Model`, e.g. a trained `build_enet_encoder` model or
            a pretrained `ENet.from_preset` model.
        target: `keras.Model`, e.g. a fresh `build_enet` model.
        skip_mismatched: bool. Leave a shared layer whose weight shapes
            differ as initialised (a classifier for another number of
            classes) instead of raising.

    Returns:
        list of str. Names of the layers whose weights were copied.

    Raises:
        ValueError: A shared layer's weights have different shapes (the
            models were built with different options or for other classes)
            and `skip_mismatched` is False.
    """
    target_layers = {layer.name: layer for layer in target.layers}
    copied = []
    for layer in source.layers:
        other = target_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        shapes, other_shapes = ([tuple(w.shape) for w in m.weights] for m in (layer, other))
        if shapes != other_shapes:
            if skip_mismatched:
                continue
            raise ValueError(
                f"Layer '{layer.name}' has weights of shapes {shapes} in "
                f"'{source.name}' but {other_shapes} in '{target.name}'; "
                "were the models built with the same options and classes? "
                "To fine-tune on other classes pass skip_mismatched=True."
            )
        other.set_weights(layer.get_weights())
        copied.append(layer.name)
    return copied
