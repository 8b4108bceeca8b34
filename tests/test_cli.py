"""The command line's manners: TensorFlow's C++ start-up lines are hidden unless the
user asks for them (`--verbose`) or set `TF_CPP_MIN_LOG_LEVEL` themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).parent / "data" / "pre_move_run"
EVALUATE = ["evaluate", str(RUN / "model.keras"), "--data", "digits", "--limit", "20",
            "--batch-size", "4"]


def _run(args, **env_changes):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.update(env_changes)
    return subprocess.run([sys.executable, "-m", "larq_dybnn_cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _tensorflow_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "tensorflow/" in line or "external/local_" in line or "oneDNN" in line]


@pytest.mark.parametrize("extra, env, shown", [
    ([], {}, False),                                  # quiet by default
    (["--verbose"], {}, True),                        # asked for
    ([], {"TF_CPP_MIN_LOG_LEVEL": "0"}, True),        # the user's own setting wins
])
def test_tensorflow_start_up_lines_only_when_asked_for(extra, env, shown):
    result = _run([*EVALUATE, *extra], **env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ": 20 images, preprocess 'digits', top-1" in result.stdout
    # Progress about every tenth of the images, with the running accuracy.
    assert "[evaluate] 4/20 images, running top-1" in result.stdout
    assert bool(_tensorflow_lines(result.stderr)) == shown, result.stderr[-3000:]


def test_every_option_of_every_command_has_help_and_shows_its_default(capsys):
    import argparse

    from larq_dybnn_cli import build_parser

    parser = build_parser()
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [f"{name} {a.option_strings or a.dest}"
               for name, command in subcommands.choices.items() for a in command._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing
    for name, command in subcommands.choices.items():
        formatter = command._get_formatter()
        for action in command._actions:
            if action.option_strings and action.default not in (None, False,
                                                                argparse.SUPPRESS):
                assert "default" in formatter._get_help_string(action), (
                    name, action.option_strings)
    train_help = " ".join(subcommands.choices["train"].format_help().split())
    assert "--epochs EPOCHS epochs to train (default: 10)" in train_help


def test_version(capsys):
    from larq_dybnn_cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("larq-dybnn 0.")
