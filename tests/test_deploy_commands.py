"""--help of the deployment commands: exit 0, the text users read, no
TensorFlow loaded to print it, and the default model of the library (slow:
each starts a Python process)."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Words each command's help must say: its examples and the model's scale.
EXPECTED = {
    "predict": ("tf-enet-predict --images", "size it was trained at", "--output_dir"),
    "evaluate": ("tf-enet-evaluate --dataset", "size it was trained at", "--output_json"),
    "export": ("tf-enet-export --format", "--quantize", "--output"),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_help_exits_0_without_loading_tensorflow(command, tmp_path):
    code = (
        "import sys\n"
        f"sys.argv = ['tf-enet-{command}', '--help']\n"
        f"from tf_enet.cli.{command} import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert done.code in (0, None), done.code\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=REPO),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = " ".join(result.stdout.split())
    for words in EXPECTED[command]:
        assert words in text, (words, result.stdout[:2000])
