"""The PyTorch peer of benchmarks/compare.py is the network tf_enet builds.

Skipped without PyTorch (`pip install torch==2.13.0`).
"""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf_enet

torch = pytest.importorskip("torch")

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks")
sys.path.insert(0, BENCHMARKS)
import peer_torch_enet  # noqa: E402


def _trainable_sizes_keras(model):
    return sorted(int(np.prod(w.shape)) for w in model.trainable_weights)


def _trainable_sizes_torch(module):
    return sorted(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("encoder_only", [False, True])
def test_parameters_match_tf_enet(encoder_only):
    builder = tf_enet.build_enet_encoder if encoder_only else tf_enet.build_enet
    keras_model = builder(12)
    peer = peer_torch_enet.ENet(12, encoder_only=encoder_only)
    # Every weight tensor has its counterpart of the same size: one PReLU
    # slope per channel, batch norm scale and offset, bias-free convolutions.
    assert _trainable_sizes_torch(peer) == _trainable_sizes_keras(keras_model)
    expected = 339_067 if encoder_only else 363_163  # tf_enet's count for 12
    assert peer_torch_enet.count_trainable_parameters(peer) == expected


def test_pixel_statistics_match_tf_enet():
    assert peer_torch_enet.PIXEL_MEAN == tf_enet.model.PIXEL_MEAN
    assert peer_torch_enet.PIXEL_STD == tf_enet.model.PIXEL_STD
    assert peer_torch_enet.OUTPUT_STRIDE == tf_enet.model.OUTPUT_STRIDE


@pytest.mark.parametrize("size", [(32, 48), (37, 53)])
def test_output_shapes(size):
    torch.manual_seed(0)
    images = 255 * torch.rand(2, 3, *size)
    full = peer_torch_enet.ENet(5).eval()
    encoder = peer_torch_enet.ENet(5, encoder_only=True).eval()
    with torch.inference_mode():
        assert tuple(full(images).shape) == (2, 5, *size)
        # ceil(37 / 8) = 5, ceil(53 / 8) = 7
        expected = (2, 5, -(-size[0] // 8), -(-size[1] // 8))
        assert tuple(encoder(images).shape) == expected


def test_activations_follow_the_paper():
    peer = peer_torch_enet.ENet(3)
    encoder = [
        peer.initial_block,
        peer.bottleneck1_0,
        peer.stage1,
        peer.bottleneck2_0,
        peer.stages2_3,
    ]
    decoder = [peer.bottleneck4_0, peer.stage4, peer.bottleneck5_0, peer.stage5]

    def kinds(parts):
        return {
            type(m)
            for part in parts
            for m in part.modules()
            if isinstance(m, (torch.nn.PReLU, torch.nn.ReLU))
        }

    assert kinds(encoder) == {torch.nn.PReLU}
    assert kinds(decoder) == {torch.nn.ReLU}


def test_convolution_kernels_are_those_tf_enet_decays():
    peer = peer_torch_enet.ENet(3)
    kernels = peer_torch_enet.convolution_kernels(peer)
    convolutions = [
        layer
        for layer in tf_enet.build_enet(3).layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
    ]
    assert len(kernels) == len(convolutions) == 89
    assert sorted(k.numel() for k in kernels) == sorted(
        int(np.prod(layer.kernel.shape)) for layer in convolutions
    )


def _peer_module(peer, layer_name):
    """The peer's module holding the weights of tf_enet's layer `layer_name`."""
    if layer_name == "fullconv":
        return peer.fullconv
    if layer_name.startswith("initial_block_"):
        return getattr(peer.initial_block, layer_name.removeprefix("initial_block_"))
    match = re.fullmatch(r"bottleneck(\d)_(\d)(?:_dilated|_asymmetric)?_(\w+)", layer_name)
    stage, index, part = match.group(1), int(match.group(2)), match.group(3)
    repeated = {
        "1": peer.stage1,
        "2": peer.stages2_3,
        "3": peer.stages2_3[8:],
        "4": peer.stage4,
        "5": [peer.stage5],
    }[stage]
    block = getattr(peer, f"bottleneck{stage}_0") if index == 0 else repeated[index - 1]
    if re.fullmatch(r"conv_\d+x1", part):
        return block.conv[0]
    if re.fullmatch(r"conv_1x\d+", part):
        return block.conv[1]
    return getattr(block, part)


def _copy_weights(keras_model, peer):
    """Copies every tf_enet weight into the peer; returns how many tensors."""
    copied = 0
    for layer in keras_model.layers:
        weights = [w.numpy() for w in layer.weights]
        if not weights:
            continue
        module = _peer_module(peer, layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            targets = [module.weight, module.bias, module.running_mean, module.running_var]
        elif isinstance(layer, keras.layers.PReLU):
            targets, weights = [module.weight], [weights[0].reshape(-1)]
        else:
            # Keras kernels [kh, kw, in, out] ([kh, kw, out, in] transposed)
            # are PyTorch's [out, in, kh, kw] ([in, out, kh, kw]).
            weights[0] = weights[0].transpose(3, 2, 0, 1)
            targets = [module.weight] + ([module.bias] if len(weights) == 2 else [])
        assert len(targets) == len(weights), layer.name
        for target, value in zip(targets, weights):
            assert tuple(target.shape) == value.shape, layer.name
            with torch.no_grad():
                target.copy_(torch.from_numpy(value))
            copied += 1
    return copied


@pytest.mark.parametrize("size", [(64, 96), (37, 53)])
def test_with_tf_enet_weights_the_peer_computes_tf_enet_logits(size):
    """The independent check that both networks are the same function."""
    keras_model = tf_enet.ENet.from_preset("enet_camvid")
    peer = peer_torch_enet.ENet(11).eval()
    # Every trainable tensor and both batch norm statistics.
    assert _copy_weights(keras_model, peer) == len(keras_model.weights)
    images = np.random.RandomState(0).uniform(0, 255, (2, *size, 3)).astype("float32")
    expected = keras_model.predict_on_batch(images)
    with torch.inference_mode():
        logits = peer(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    logits = logits.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-3)
    assert (logits.argmax(-1) == expected.argmax(-1)).mean() > 0.999


@pytest.mark.slow
def test_compare_prints_every_row(tmp_path):
    command = [
        sys.executable,
        os.path.join(BENCHMARKS, "compare.py"),
        "--height",
        "32",
        "--width",
        "48",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--batch_size",
        "1",
        "--parts",
        "inference,training",
    ]
    result = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {
        line.split("|")[0].strip(): [c.strip() for c in line.split("|")[1:]]
        for line in result.stdout.splitlines()
        if "|" in line
    }
    assert rows["peer: PyTorch ENet, eager"][1] == "1.00x"
    assert rows["peer: training step, full"][1] == "1.00x"
    for name in (
        "predictor, default: predict, labels",
        "tf_enet: training step, full (train.py's compile)",
        "tf_enet: training step, encoder (train.py's compile)",
    ):
        ms, ratio = rows[name]
        assert float(ms) > 0 and ratio.endswith("x")
