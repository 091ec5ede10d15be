"""The package as a user installs it: one version, the wheel, the commands.

The slow tests build a wheel from the checkout's files, install it into a
fresh virtual environment and use it from a directory outside the checkout.
The environment gets its dependencies from the one running the tests (its
site-packages is put on the path with a `.pth` line, which does not run that
environment's own `.pth` hooks, so the editable tf_enet there stays hidden):
the test runs offline, and `pip check` still verifies that the wheel's
declared dependencies are met.
"""

import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import time
import zipfile

import cv2
import keras
import numpy as np
import pytest
from packaging.requirements import Requirement

import tf_enet
from tf_enet import __main__ as tf_enet_main
from tf_enet import cli

tomllib = pytest.importorskip("tomllib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "data", "samples", "0016E5_07959.jpg")
COMMANDS = ("train", "predict", "evaluate", "export")
HELP_SECONDS = 2.0
# A line of TensorFlow's C++ log: "I0000 00:00:...", "E1130 20:33:12..." etc.
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _env(**extra):
    env = dict(os.environ, **extra)
    # The default the commands choose, not the one conftest sets.
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def test_version_is_written_once():
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    dynamic = _pyproject()["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "tf_enet.__version__"}
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        assert "version" not in f.read()
    assert re.fullmatch(r"\d+\.\d+\.\d+", tf_enet.__version__)


def test_console_scripts_are_the_commands_of_python_m_tf_enet():
    scripts = _pyproject()["project"]["scripts"]
    assert scripts == {
        f"tf-enet-{name}": f"{module}:main" for name, module in tf_enet_main.COMMANDS.items()
    }
    assert tuple(tf_enet_main.COMMANDS) == COMMANDS
    for module in tf_enet_main.COMMANDS.values():
        # Read, not imported: each command defines absl flags of the same
        # names (--model, --batch_size) in the one global flag registry.
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{module} is missing"
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        assert "main" in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, (
            f"{module} defines no main()"
        )


def test_python_m_tf_enet_without_a_command_lists_them(capsys):
    assert tf_enet_main.main(["python -m tf_enet"]) == 2
    assert "{train,predict,evaluate,export}" in capsys.readouterr().out
    assert tf_enet_main.main(["python -m tf_enet", "--help"]) == 0
    assert tf_enet_main.main(["python -m tf_enet", "--version"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"tf_enet {tf_enet.__version__}"


def test_python_m_tf_enet_unknown_command_is_one_line(capsys):
    assert tf_enet_main.main(["python -m tf_enet", "segment"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "python -m tf_enet: unknown command 'segment'; expected one of "
        "train, predict, evaluate, export.\n"
    )


def test_startup_noise_filter_keeps_other_lines():
    # The lines TensorFlow 2.21 prints on a CPU-only machine, verbatim.
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796070291.524391    9089 port.cc:153] oneDNN custom operations are on. "
        "You may see slightly different numerical results due to floating-point round-off "
        "errors from different computation orders. To turn them off, set the environment "
        "variable `TF_ENABLE_ONEDNN_OPTS=0`.",
        "I0000 00:00:1796070291.524703    9089 cudart_stub.cc:31] Could not find cuda "
        "drivers on your machine, GPU will not be used.",
        "I0000 00:00:1796070291.583374    9089 cpu_feature_guard.cc:227] This TensorFlow "
        "binary is optimized to use available CPU instructions in performance-critical "
        "operations.",
        "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 "
        "AVX_VNNI FMA, in other operations, rebuild TensorFlow with the appropriate "
        "compiler flags.",
        "E0000 00:00:1796070294.001676    9089 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
        # The converter's quantizer, on an int8 export.
        "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, "
        "output_inference_type: INT8",
    ]
    kept = [
        "E0000 00:00:1796070294.001676    9089 op_kernel.cc:1840] OP_REQUIRES failed",
        "Traceback (most recent call last):",
    ]
    assert [line for line in noise if cli._STARTUP_NOISE.search(line)] == noise
    assert [line for line in kept if cli._STARTUP_NOISE.search(line)] == []


def test_library_log_filter_drops_only_the_libraries_info():
    import logging

    import tensorflow as tf

    tf_dir = os.path.dirname(tf.__file__)
    log_filter = cli.LibraryLogFilter(["tensorflow", "no_such_package_xyz"])

    def record(path, level):
        return logging.LogRecord("absl", level, path, 156, "message", None, None)

    library = os.path.join(tf_dir, "python", "saved_model", "signature_serialization.py")
    ours = os.path.join(ROOT, "tf_enet", "training", "trainer.py")
    # A directory whose name only starts like the package's.
    beside = os.path.join(tf_dir + "_io", "module.py")
    assert not log_filter.filter(record(library, logging.INFO))
    assert log_filter.filter(record(library, logging.WARNING))
    assert log_filter.filter(record(ours, logging.INFO))
    assert log_filter.filter(record(beside, logging.INFO))


@pytest.mark.slow
def test_import_tf_enet_loads_neither_tensorflow_nor_keras():
    code = (
        "import sys, tf_enet, tf_enet.cli, tf_enet.presets;"
        "tf_enet.list_presets(); tf_enet.presets.preset_path('enet_camvid');"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out == "[]\n"


@pytest.mark.slow
def test_quiet_tensorflow_hides_the_startup_lines(tmp_path):
    code = (
        "from tf_enet import cli; cli.quiet_tensorflow();"
        "import tensorflow as tf; print(int(tf.constant(2) + 1))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        check=True,
    )
    assert result.stdout == "3\n"
    assert result.stderr == ""


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_quick_and_exits_0(command, tmp_path):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "tf_enet", command, "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    doc = importlib.util.find_spec(f"tf_enet.cli.{command}")
    with open(doc.origin, encoding="utf-8") as f:
        summary = ast.get_docstring(ast.parse(f.read())).splitlines()[0]
    assert result.stdout.startswith(summary + "\n")
    assert f"tf-enet-{command} " in result.stdout  # an example
    assert "\nflags:\n  --" in result.stdout
    assert seconds < HELP_SECONDS, f"--help took {seconds:.1f} s"


# --- The wheel, installed -------------------------------------------------


def _checkout_files():
    """The checkout's files as a clone has them, plus new unignored ones."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [
        name
        for name in out.decode().split("\0")
        if name and os.path.isfile(os.path.join(ROOT, name))
    ]


def _offline_build_args():
    """Build with this environment's setuptools (offline) if it is new enough.

    Otherwise pip installs the build requirements from the package index.
    """
    (requirement,) = _pyproject()["build-system"]["requires"]
    requirement = Requirement(requirement)
    try:
        installed = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return []
    if requirement.specifier.contains(installed):
        return ["--no-build-isolation", "--no-index"]
    return []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the checkout (nothing written into it)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    for name in _checkout_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(os.path.join(ROOT, name), "rb") as f:
            target.write_bytes(f.read())
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "-q",
            "-w",
            str(base / "dist"),
            *_offline_build_args(),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = (base / "dist").glob("tf_enet-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh virtual environment with the wheel installed; its bin/."""
    base = tmp_path_factory.mktemp("venv")
    env_dir = base / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    with open(os.path.join(site, "_test_dependencies.pth"), "w") as f:
        f.write("\n".join(sorted(paths)) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return env_dir / "bin"


def _reference_labels(image_path):
    """Class ids of the repository's shipped model for one image."""
    model = keras.saving.load_model(
        os.path.join(ROOT, "checkpoints", "enet_camvid", "model.keras"), compile=False
    )
    image = cv2.cvtColor(cv2.imread(image_path), cv2.COLOR_BGR2RGB)
    return np.argmax(model(image[None].astype(np.float32), training=False), -1)[0]


@pytest.mark.slow
def test_wheel_holds_the_package_and_preset_only(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(
            next(n for n in names if n.endswith(".dist-info/METADATA"))
        ).decode()
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    assert {n.split("/")[0] for n in names} == {
        "tf_enet",
        f"tf_enet-{tf_enet.__version__}.dist-info",
    }
    # Besides Python sources, the presets' files and the web page's, nothing else.
    assert sorted(n for n in names if n.startswith("tf_enet/") and not n.endswith(".py")) == [
        "tf_enet/presets/enet_camvid/config.json",
        "tf_enet/presets/enet_camvid/model.keras",
        "tf_enet/presets/enet_camvid/model_360x480.tflite",
        "tf_enet/presets/enet_camvid/model_360x480.tflite.json",
        "tf_enet/presets/enet_camvid_trainval/config.json",
        "tf_enet/presets/enet_camvid_trainval/model.keras",
        "tf_enet/presets/enet_camvid_trainval/model_360x480.tflite",
        "tf_enet/presets/enet_camvid_trainval/model_360x480.tflite.json",
        "tf_enet/web/static/index.html",
        "tf_enet/web/static/page.js",
        "tf_enet/web/static/pixels.js",
        "tf_enet/web/static/style.css",
    ]
    sources = {n for n in _checkout_files() if n.startswith("tf_enet/") and n.endswith(".py")}
    assert sources <= set(names)
    assert f"\nVersion: {tf_enet.__version__}\n" in metadata
    assert re.search(r"^Requires-Dist: pillow", metadata, re.MULTILINE)
    for name in COMMANDS:
        assert f"tf-enet-{name} = tf_enet.cli.{name}:main" in entry_points


@pytest.mark.slow
def test_installed_dependencies_are_met(venv):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "python"), "check"],
        capture_output=True,
        text=True,
    )
    assert not [
        line
        for line in result.stdout.splitlines()
        if line.lower().startswith(("tf-enet", "tf_enet"))
    ]


@pytest.mark.slow
def test_installed_predict_segments_with_the_preset(venv, tmp_path):
    image = tmp_path / "street.jpg"
    image.write_bytes(open(SAMPLE, "rb").read())
    result = subprocess.run(
        [str(venv / "tf-enet-predict"), "--images", "street.jpg", "--output_dir", "out"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    assert not CPP_LOG_LINE.search(result.stderr), result.stderr
    labels = cv2.imread(str(tmp_path / "out" / "street_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels, _reference_labels(SAMPLE))


@pytest.mark.slow
def test_installed_python_api_uses_the_preset(venv, tmp_path):
    code = f"""
import cv2, numpy as np, tf_enet
from tf_enet import inference
assert tf_enet.__file__.startswith({str(venv.parent)!r}), tf_enet.__file__
image = cv2.cvtColor(cv2.imread({SAMPLE!r}), cv2.COLOR_BGR2RGB)
model = tf_enet.ENet.from_preset("enet_camvid")
np.save("from_preset.npy", np.argmax(model(image[None].astype("float32"), training=False), -1)[0])
np.save("load_predictor.npy", inference.load_predictor().predict(image[None])[0])
"""
    subprocess.run([str(venv / "python"), "-c", code], cwd=tmp_path, env=_env(), check=True)
    reference = _reference_labels(SAMPLE)
    np.testing.assert_array_equal(np.load(tmp_path / "from_preset.npy"), reference)
    np.testing.assert_array_equal(np.load(tmp_path / "load_predictor.npy"), reference)
