"""Build the `larq-dybnn-runtime` aarch64 wheel (`make wheel-arm`).

Cross-compiles LCE's kernels (with `-DTFLITE_WITH_RUY`, the NEON bgemm kernels devices
run) and the project's registerer into `liblce_ops.so`, stages it with the runner
package (`runtime/larq_dybnn_runtime`) and the upstream LICENSE files, reads the
library's symbol-version needs (GLIBC, GLIBCXX, CXXABI), and tags the wheel with the
oldest manylinux policy that allows them, so the tag is true; `auditwheel show`, when
installed, must agree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from larq_dybnn.device.emulation import ArmSetupError, _host_tools, build_op_library

__all__ = ["build_wheel", "symbol_versions", "platform_tag", "POLICIES"]

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime"
#: manylinux policies (aarch64) and the newest symbol versions each allows
#: (PEP 600 / auditwheel's policy.json): glibc, libstdc++ (GLIBCXX), C++ ABI, libgcc.
POLICIES = (
    ("manylinux_2_17", {"GLIBC": (2, 17), "GLIBCXX": (3, 4, 19), "CXXABI": (1, 3, 7),
                        "GCC": (4, 8, 0)}),
    ("manylinux_2_24", {"GLIBC": (2, 24), "GLIBCXX": (3, 4, 22), "CXXABI": (1, 3, 10),
                        "GCC": (6, 0, 0)}),
    ("manylinux_2_27", {"GLIBC": (2, 27), "GLIBCXX": (3, 4, 24), "CXXABI": (1, 3, 11),
                        "GCC": (7, 0, 0)}),
    ("manylinux_2_28", {"GLIBC": (2, 28), "GLIBCXX": (3, 4, 25), "CXXABI": (1, 3, 11),
                        "GCC": (7, 0, 0)}),
    ("manylinux_2_31", {"GLIBC": (2, 31), "GLIBCXX": (3, 4, 28), "CXXABI": (1, 3, 12),
                        "GCC": (9, 0, 0)}),
    ("manylinux_2_34", {"GLIBC": (2, 34), "GLIBCXX": (3, 4, 29), "CXXABI": (1, 3, 13),
                        "GCC": (11, 0, 0)}),
    ("manylinux_2_35", {"GLIBC": (2, 35), "GLIBCXX": (3, 4, 30), "CXXABI": (1, 3, 13),
                        "GCC": (12, 0, 0)}),
)
#: Libraries a manylinux wheel may link without bundling them.
ALLOWED_LIBRARIES = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1",
                     "libpthread.so.0", "libdl.so.2", "ld-linux-aarch64.so.1"}


def symbol_versions(library: str | os.PathLike) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """The newest version the library needs per symbol family, and its NEEDED libraries.

    Raises:
        ArmSetupError: if the cross `readelf` fails.
    """
    def readelf(flag: str) -> str:
        done = subprocess.run(["aarch64-linux-gnu-readelf", flag, str(library)],
                              capture_output=True, text=True)
        if done.returncode:
            raise ArmSetupError(f"readelf {flag} '{library}' failed: {done.stderr.strip()}")
        return done.stdout

    newest: dict[str, tuple[int, ...]] = {}
    for family, version in re.findall(r"Name: (GLIBCXX|GLIBC|CXXABI|GCC)_([0-9.]+)",
                                      readelf("-V")):
        parsed = tuple(int(v) for v in version.split("."))
        newest[family] = max(newest.get(family, ()), parsed)
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d")))
    return newest, needed


def platform_tag(library: str | os.PathLike) -> str:
    """The oldest manylinux aarch64 tag whose policy allows the library's needs.

    Raises:
        ArmSetupError: for a library that links something outside the policies, or
            needs newer versions than any policy here allows.
    """
    newest, needed = symbol_versions(library)
    foreign = sorted(needed - ALLOWED_LIBRARIES)
    if foreign:
        raise ArmSetupError(f"'{library}' links {', '.join(foreign)}, which a manylinux "
                            "wheel may not assume.")
    for name, limits in POLICIES:
        if all(newest.get(family, ()) <= limit for family, limit in limits.items()):
            return f"{name}_aarch64"
    raise ArmSetupError(f"'{library}' needs {newest}, newer than every manylinux policy.")


def _check_with_auditwheel(wheel: Path, tag: str) -> None:
    """`auditwheel show` must find the wheel consistent with `tag` (skipped, and said,
    when auditwheel is not installed: `pip install auditwheel`)."""
    try:
        import auditwheel  # noqa: F401
    except ImportError:
        print("auditwheel is not installed; the tag is checked by readelf only",
              file=sys.stderr)
        return
    done = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          capture_output=True, text=True)
    found = re.search(r'consistent with the following platform tag:\s*"([^"]+)"',
                      done.stdout.replace("\n", " "))
    if done.returncode or found is None or found[1] != tag:
        raise ArmSetupError(f"auditwheel does not confirm {tag} for {wheel.name}: "
                            f"{(done.stdout + done.stderr).strip()[-800:]}")


def build_wheel(*, lce_source: str | os.PathLike, output_dir: str | os.PathLike,
                version: str, print_fn: Callable[[str], object] = print) -> Path:
    """Build `larq_dybnn_runtime-VERSION-py3-none-TAG.whl` into `output_dir`.

    Arguments:
        lce_source: LCE's kernel-source folder (`larq-dybnn lce-sources`).
        output_dir: where the wheel goes (`dist/`).
        version: the wheel's version (the project's).
        print_fn: receives progress lines.

    Returns:
        The wheel's path.

    Raises:
        ArmSetupError: when the cross compiler is missing and cannot be installed, the
            build fails, or the library's needs fit no manylinux policy.
    """
    _host_tools(print_fn)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="larq-dybnn-wheel-") as folder:
        stage = Path(folder)
        library = build_op_library(lce_source, stage / "lib", print_fn=print_fn)
        tag = platform_tag(library)
        package = stage / "larq_dybnn_runtime"
        shutil.copytree(RUNTIME / "larq_dybnn_runtime", package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        shutil.copyfile(library, package / "liblce_ops.so")
        licenses = package / "licenses"
        licenses.mkdir()
        for license_file in sorted(Path(lce_source).glob("LICENSE.*")):
            shutil.copyfile(license_file, licenses / license_file.name)
        if not list(licenses.iterdir()):
            raise ArmSetupError(f"'{lce_source}' holds no LICENSE.* files to ship.")
        shutil.copyfile(REPO / "LICENSE", licenses / "LICENSE.larq-dybnn")
        for name in ("setup.py", "README.md"):
            shutil.copyfile(RUNTIME / name, stage / name)
        print_fn(f"packing the wheel ({tag})")
        done = subprocess.run(
            [sys.executable, "setup.py", "-q", "bdist_wheel", "--python-tag", "py3",
             "--plat-name", tag, "--dist-dir", str(stage / "dist")],
            cwd=stage, capture_output=True, text=True,
            env={**os.environ, "LARQ_DYBNN_RUNTIME_VERSION": version})
        if done.returncode:
            raise ArmSetupError(f"bdist_wheel failed: {done.stderr.strip()[-1500:]}")
        (built,) = (stage / "dist").glob("*.whl")
        name = built.name
        if not name.endswith(f"-py3-none-{tag}.whl"):
            raise ArmSetupError(f"bdist_wheel wrote {name}, not a py3-none-{tag} wheel.")
        _check_with_auditwheel(built, tag)
        target = output_dir / name
        temporary = output_dir / f".{name}.tmp"
        shutil.copyfile(built, temporary)
        os.replace(temporary, target)
    print_fn(f"wrote {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    """`python -m larq_dybnn.device.wheel --lce-source DIR [--output-dir dist]`."""
    import argparse

    from larq_dybnn import __version__

    parser = argparse.ArgumentParser(prog="python -m larq_dybnn.device.wheel",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--lce-source", required=True,
                        help="LCE's kernel-source folder (larq-dybnn lce-sources DIR)")
    parser.add_argument("--output-dir", default="dist")
    args = parser.parse_args(argv)
    if not Path(args.lce_source).is_dir():
        parser.error(f"--lce-source: no folder at '{args.lce_source}'")
    try:
        build_wheel(lce_source=args.lce_source, output_dir=args.output_dir,
                    version=__version__)
    except (ArmSetupError, OSError) as error:
        print(f"wheel-arm: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
