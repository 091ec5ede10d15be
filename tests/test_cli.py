"""The command lines' shared contract (`tf_enet.cli`): one way to refuse a
bad command line, checked before TensorFlow loads (slow: one process each)."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("train", "predict", "evaluate", "export")


def run_command(command, *args):
    code = (
        "import sys\n"
        f"sys.argv = ['tf-enet-{command}', *{list(args)!r}]\n"
        f"from tf_enet.cli.{command} import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "    assert not loaded, loaded\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_flag_is_one_error_line(command):
    result = run_command(command, "--bogus")
    assert result.returncode == 2
    assert result.stderr == "error: Unknown command line flag 'bogus'\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, args, message",
    [
        (
            "predict",
            ["--height", "360", "image.png"],
            "flags height=360, width=None: give both --height and --width, or neither.",
        ),
        ("evaluate", ["--limit", "0"], "flag --limit=0: --limit must be positive."),
        (
            "predict",
            ["--batch_size", "0", "image.png"],
            "flag --batch_size=0: --batch_size must be positive.",
        ),
        ("export", ["--output", "enet.tflite", "extra"], "unexpected arguments: extra"),
        (
            "predict",
            ["--tta", "mirror", "image.png"],
            "flag --tta=mirror: value should be one of <none|flip|flip+scales>",
        ),
        (
            "evaluate",
            ["--tta", "mirror"],
            "flag --tta=mirror: value should be one of <none|flip|flip+scales>",
        ),
    ],
)
def test_shared_flag_checks_refuse_in_one_line(command, args, message):
    result = run_command(command, *args)
    assert result.returncode == 2
    assert result.stderr == f"error: {message}\n"
