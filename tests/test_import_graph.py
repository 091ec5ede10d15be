"""The module graph of tf_enet: no import cycle, and a runtime without TensorFlow.

The graph is read from the sources (ast), every `import` counted wherever it
is written: a function-local import that avoids a cycle at run time is
still a cycle in the design.
"""

import ast
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tf_enet")
SAMPLES = os.path.join(ROOT, "data", "samples")


def _modules():
    """Module name -> source file, for every module of tf_enet/."""
    modules = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                modules[module.removesuffix(".__init__")] = path
    return modules


def import_graph():
    """Module -> the set of tf_enet modules it imports (anywhere in its code)."""
    modules = _modules()
    graph = {module: set() for module in modules}
    for module, path in modules.items():
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:
                        graph[module].add(target)
                    elif base in modules:
                        graph[module].add(base)
    return graph


def find_cycle(graph):
    """One cycle of `graph` as a list of nodes (first repeated last), or None."""
    state = {}  # node -> "open" while on the path, "done" after

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if target == node:
                continue
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_find_cycle_finds_a_cycle_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    # tf_enet.presets.save_preset imports the conversions inside the function.
    assert "tf_enet.conversions" in graph["tf_enet.presets"]
    assert "tf_enet.inference.loading" in graph["tf_enet.inference.predictor"]


def test_tf_enet_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


# Makes `import tensorflow` (and keras) fail, as in the light install.
_BLOCK_TENSORFLOW = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
sys.meta_path.insert(0, _Block())
"""


@pytest.mark.slow
def test_predictor_and_evaluation_run_where_tensorflow_cannot_be_imported(tmp_path):
    code = (
        _BLOCK_TENSORFLOW
        + f"""
import cv2, numpy as np
from tf_enet import inference
predictor = inference.load_predictor()
assert predictor.runtime == "tflite", predictor.runtime
image = cv2.cvtColor(cv2.imread({os.path.join(SAMPLES, "0016E5_07959.jpg")!r}), cv2.COLOR_BGR2RGB)
print(predictor.predict(image[None]).shape)
# Test-time augmentation runs every view and window at the conversion's size.
for tta in ("flip", "flip+scales"):
    print(inference.load_predictor(tta=tta).predict(image[None]).shape)
"""
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "(1, 360, 480)\n" * 3


@pytest.mark.slow
def test_commands_run_a_tflite_export_where_tensorflow_cannot_be_imported(tmp_path):
    from tf_enet import exporting

    from inference_helpers import CONFUSION, pixel_model, run_config, write_folder_dataset

    model = str(tmp_path / "pixel.tflite")
    exporting.export_tflite(pixel_model(3), model, run_config())
    data_dir = write_folder_dataset(tmp_path / "data")
    # With test-time augmentation too: the pixel model reads each pixel's
    # class from it, so flipping changes no label and the hand-counted
    # confusion matrix holds.
    tta = ["--tta", "flip"]
    images = os.path.join(data_dir, "images", "val")
    commands = {
        "evaluate": ["--dataset", "folder", "--data_dir", data_dir, "--split", "val", *tta],
        "predict": ["--images", images, "--output_dir", "out", *tta],
    }
    for command, flags in commands.items():
        code = (
            _BLOCK_TENSORFLOW
            + f"sys.argv = ['tf-enet-{command}', '--model', {model!r}, "
            + f"'--output_json' if {command == 'evaluate'} else '--alpha', "
            + f"'scores.json' if {command == 'evaluate'} else '0.5', *{flags!r}]\n"
            + f"from tf_enet.cli import {command}\n{command}.main()\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
    with open(tmp_path / "scores.json") as f:
        scores = json.load(f)
    assert scores["confusion_matrix"] == CONFUSION and scores["tta"] == "flip"
    assert sorted(os.listdir(tmp_path / "out")) == [
        f"{name}_{kind}" for name in "ab" for kind in ("color.png", "labels.png", "overlay.jpg")
    ]


@pytest.mark.slow
def test_train_without_tensorflow_names_the_extra_in_one_line(tmp_path):
    def train(*flags):
        code = (
            _BLOCK_TENSORFLOW
            + f"sys.argv = ['tf-enet-train', *{list(flags)!r}]\n"
            + "from tf_enet.cli import train\ntrain.main()\n"
        )
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
        )

    assert train("--help").returncode == 0
    result = train("--dataset", "camvid")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: tf-enet-train needs TensorFlow here (tensorflow is not installed); "
        'install the [train] extra (in the tf_enet checkout: pip install -e ".[train]")'
    ]


@pytest.mark.slow
def test_a_keras_model_without_tensorflow_is_one_error_naming_the_extra(tmp_path):
    from inference_helpers import pixel_model, write_checkpoint

    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3))
    code = (
        _BLOCK_TENSORFLOW
        + "from tf_enet import inference\n"
        + f"try:\n    inference.load_predictor({checkpoint!r})\n"
        + "except inference.ModelError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "runs in TensorFlow, which is not installed" in result.stdout
    assert 'pip install -e ".[train]"' in result.stdout


@pytest.mark.slow
def test_another_size_than_the_presets_conversion_names_the_size_and_the_extra(tmp_path):
    # The preset runs as its 360x480 TFLite conversion without TensorFlow;
    # another model size needs the Keras model, and the error says so.
    code = (
        _BLOCK_TENSORFLOW
        + """
import numpy as np
from tf_enet import inference
predictor = inference.load_predictor("enet_camvid")
image = np.zeros((1, 360, 480, 3), np.uint8)
assert predictor.predict(image).shape == (1, 360, 480)
try:
    predictor.predict(image, input_size=(100, 8))
except inference.ModelError as error:
    print(error)
"""
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert "model.keras at another size than 360x480 (its TFLite conversion's)" in result.stdout
    assert 'pip install -e ".[train]"' in result.stdout
    assert "or run it at 360x480" in result.stdout
