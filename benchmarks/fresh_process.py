"""Run a benchmark's measuring code in a fresh Python process and read its figures.

Start-up costs (imports, tracing, the first step) are paid once per process, so the
start-up benchmarks measure each set-up in a new process. The code prints one JSON
line of figures as its last output line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_fresh(code: str, *arguments: str, label: str, timeout: float = 1800) -> dict:
    """Run `code` with `arguments` (its `sys.argv[1:]`) in a fresh interpreter.

    Arguments:
        code: Python source that prints one JSON object as its last stdout line.
        *arguments: strings passed to it as `sys.argv[1:]`.
        label: the set-up's name, for the error message.
        timeout: seconds before the process is stopped.

    Returns:
        The JSON object the process printed last.

    Raises:
        RuntimeError: naming `label`, with the end of stderr, if the process failed.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code, *arguments], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the '{label}' process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
