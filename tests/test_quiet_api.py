"""Using tf_enet from Python is as quiet as its commands (slow: a fresh
process, whose environment does not set TF_CPP_MIN_LOG_LEVEL)."""

import os
import re
import subprocess
import sys

import pytest

# A line of TensorFlow's C++ log: "I0000 00:00:...", "W1130 20:33:12..." etc.
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} ")
# Where TensorFlow's start-up lines come from: the oneDNN and CPU notices,
# the CUDA stubs of a machine without a GPU.
STARTUP_SOURCES = re.compile(r" (port|cudart_stub|cpu_feature_guard|cuda_platform)\.cc:")

# tf_enet first: TensorFlow reads its log level when it loads.
CODE = """
import tf_enet
import keras
from tf_enet import exporting

inputs = keras.Input((8, 8, 3))
model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
exporting.export_tflite(model, "model.tflite")
print("exported")
"""


@pytest.mark.slow
def test_an_export_from_python_logs_no_tensorflow_internals(tmp_path):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # conftest's; a user's session has none
    result = subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "exported\n"
    # TensorFlow prints its start-up lines before any log level applies
    # (the commands filter them from file descriptor 2); after those, the
    # converter's and the session's INFO and WARNING lines are what a
    # user would see, and none may remain.
    lines = [
        line
        for line in result.stderr.splitlines()
        if CPP_LOG_LINE.match(line) and not STARTUP_SOURCES.search(line)
    ]
    assert lines == [], "\n".join(lines)
