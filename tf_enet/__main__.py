"""`python -m tf_enet <command> [flags]`: the installed commands in one.

    python -m tf_enet predict --images data/samples/
    python -m tf_enet evaluate --help

Commands: train, predict, evaluate, export (the same as `tf-enet-train`,
`tf-enet-predict`, `tf-enet-evaluate` and `tf-enet-export`).
"""

import importlib
import sys

import tf_enet

COMMANDS = {
    "train": "tf_enet.cli.train",
    "predict": "tf_enet.cli.predict",
    "evaluate": "tf_enet.cli.evaluate",
    "export": "tf_enet.cli.export",
}


def main(argv=None):
    """Runs the command named by the first argument with the rest.

    Args:
        argv: list of str or None. The command line, program name first;
            None reads `sys.argv`.

    Returns:
        int exit status: 0 for `--help`/`--version`, 2 for a missing or
        unknown command; otherwise the command exits itself.
    """
    argv = list(sys.argv if argv is None else argv)
    program = "python -m tf_enet"
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(f"usage: {program} {{{','.join(COMMANDS)}}} [flags]\n\n{__doc__.strip()}")
        return 0 if len(argv) >= 2 else 2
    if argv[1] == "--version":
        print(f"tf_enet {tf_enet.__version__}")
        return 0
    command = argv[1]
    if command not in COMMANDS:
        print(
            f"{program}: unknown command {command!r}; expected one of {', '.join(COMMANDS)}.",
            file=sys.stderr,
        )
        return 2
    # absl parses sys.argv; the command sees itself as the program.
    sys.argv = [f"{program} {command}"] + argv[2:]
    return importlib.import_module(COMMANDS[command]).main()


if __name__ == "__main__":
    sys.exit(main())
