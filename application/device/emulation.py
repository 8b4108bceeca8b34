"""An emulated aarch64 environment that runs exported models on LCE's ARM kernels.

Larq Compute Engine publishes no aarch64 Python wheel, and its x86 kernels are other
code than the NEON kernels phones and Raspberry Pis run. `prepare` builds, from
Debian's and PyPI's packages only, what running those kernels on an x86 machine
takes, cached in a folder the user chooses (every step is skipped when done):

1. host tools: Debian's `qemu-user` (user-mode emulation) and `g++-aarch64-linux-gnu`;
2. a sysroot with Debian's arm64 Python 3.11 (`apt-get download` + `dpkg -x`; no
   chroot, no binfmt_misc);
3. PyPI's aarch64 wheels of `tflite-runtime` and `numpy`, unpacked beside
   `larq_dybnn_runtime` (the device-side runner);
4. LCE's op library, cross-compiled from an LCE source folder (a user's LCE
   checkout, or the kernel sources the project's tests use) with
   `lce_register.cc` of this package.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import larq_dybnn_runtime

__all__ = ["ArmEnvironment", "prepare", "build_op_library", "ArmSetupError",
           "DEBIAN_PACKAGES", "WHEELS"]

#: Debian (bookworm) arm64 packages of a Python 3.11 that runs under qemu-aarch64.
DEBIAN_PACKAGES = (
    "libc6", "libgcc-s1", "gcc-12-base", "libstdc++6", "zlib1g", "libexpat1", "libffi8",
    "libssl3", "libbz2-1.0", "liblzma5", "libcrypt1", "libdb5.3", "libncursesw6",
    "libtinfo6", "libnsl2", "libtirpc3", "libreadline8", "libsqlite3-0", "libuuid1",
    "libzstd1", "libmd0", "python3.11-minimal", "libpython3.11-minimal",
    "libpython3.11-stdlib", "python3.11",
)
#: Host packages: user-mode emulation and the cross compiler.
HOST_PACKAGES = ("qemu-user", "g++-aarch64-linux-gnu")
#: PyPI's aarch64 wheels the runner needs (tflite-runtime 2.14 is the newest with
#: a cp311 aarch64 wheel; its extension exports the tflite and ruy functions LCE's
#: kernels call; tflite and flatbuffers: the file check before the interpreter).
WHEELS = ("tflite-runtime==2.14.0", "numpy==1.26.4", "tflite==2.18.0",
          "flatbuffers==25.12.19")
_WHEEL_PLATFORMS = ("manylinux_2_34_aarch64", "manylinux_2_17_aarch64",
                    "manylinux2014_aarch64")
#: LCE's kernel sources (relative to an LCE source folder) and the compile flags.
KERNEL_SOURCES = tuple(f"larq_compute_engine/tflite/kernels/{name}.cc"
                       for name in ("bconv2d", "bmaxpool", "quantization"))
_INCLUDES = (".", "third_party/flatbuffers/include", "third_party/gemmlowp")
# TFLITE_WITH_RUY: without it LCE's Register_BCONV_2D() is the reference kernel;
# FLATBUFFERS_LOCALE_INDEPENDENT=0: flatbuffers' locale object lives in a .cc that
# the runtime does not export.
CXXFLAGS = ("-std=c++17", "-O3", "-fPIC", "-DNDEBUG", "-DTFLITE_WITH_RUY",
            "-DFLATBUFFERS_LOCALE_INDEPENDENT=0")
_REGISTERER = Path(__file__).with_name("lce_register.cc")
_RUNNER = Path(larq_dybnn_runtime.__file__).parent


class ArmSetupError(RuntimeError):
    """The emulated environment cannot be set up here (and why)."""


@dataclass(frozen=True)
class ArmEnvironment:
    """A prepared environment (see `prepare`).

    Attributes:
        root: the cache folder.
        sysroot: the arm64 Debian root qemu runs programs in.
        site: the folder on the emulated Python's path (wheels and the runner).
        library: LCE's op library for aarch64.
        qemu: the `qemu-aarch64` program.
    """

    root: Path
    sysroot: Path
    site: Path
    library: Path
    qemu: str

    def command(self, *args: str) -> list[str]:
        """The command line that runs the emulated Python with `args`."""
        return [self.qemu, "-L", str(self.sysroot), str(self.sysroot / "usr/bin/python3.11"),
                *args]

    def environ(self) -> dict[str, str]:
        """Environment of emulated runs: deterministic hashing, one BLAS thread."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(self.site),
                "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"}

    def run(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run the emulated Python with `args`.

        Raises:
            ArmSetupError: if it exits with an error (its output quoted).
        """
        done = subprocess.run(self.command(*args), env=self.environ(), capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode:
            raise ArmSetupError(f"Emulated aarch64 run failed (exit {done.returncode}): "
                                f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return done


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".prepare.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # wait: another process may be preparing
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_output(command: Sequence[str], what: str) -> str:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True)
    except FileNotFoundError:
        raise ArmSetupError(f"{what}: '{command[0]}' is not installed.") from None
    if done.returncode:
        raise ArmSetupError(f"{what} failed (exit {done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-1500:]}")
    return done.stdout


def _require_apt(why: str) -> None:
    if not Path("/etc/debian_version").is_file() or shutil.which("apt-get") is None:
        raise ArmSetupError(
            f"{why} needs Debian's packages (apt-get), and this machine is not Debian "
            "or Debian-based. Install qemu-user and an aarch64 cross g++ yourself, or "
            "run on Debian 12.")
    if os.geteuid() != 0:
        raise ArmSetupError(f"{why} installs Debian packages and needs root (run it as "
                            "root, e.g. with sudo, or install "
                            f"{' '.join(HOST_PACKAGES)} first).")


def _host_tools(say: Callable[[str], object]) -> str:
    missing = [p for p, program in zip(HOST_PACKAGES, ("qemu-aarch64", "aarch64-linux-gnu-g++"))
               if shutil.which(program) is None]
    if missing:
        _require_apt("Installing " + ", ".join(missing))
        say(f"installing {', '.join(missing)} (apt-get)")
        _check_output(["apt-get", "install", "-y", "-qq", *missing], "apt-get install")
    return shutil.which("qemu-aarch64") or "qemu-aarch64"


def _sysroot(root: Path, say: Callable[[str], object]) -> Path:
    sysroot = root / "sysroot"
    done = root / "sysroot.done"
    if done.is_file() and (sysroot / "usr/bin/python3.11").is_file():
        return sysroot
    _require_apt("Downloading Debian's arm64 Python")
    if "arm64" not in _check_output(["dpkg", "--print-foreign-architectures"], "dpkg").split():
        say("adding the arm64 architecture to dpkg")
        _check_output(["dpkg", "--add-architecture", "arm64"], "dpkg --add-architecture")
    policy = _check_output(["apt-cache", "policy", "python3.11:arm64"], "apt-cache")
    if "Candidate: (none)" in policy or not policy.strip():
        say("apt-get update (arm64 package lists)")
        _check_output(["apt-get", "update", "-qq"], "apt-get update")
    debs = root / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir(parents=True)
    say(f"downloading {len(DEBIAN_PACKAGES)} Debian arm64 packages")
    done_download = subprocess.run(
        ["apt-get", "download", "-qq", *(f"{p}:arm64" for p in DEBIAN_PACKAGES)],
        cwd=debs, capture_output=True, text=True)
    if done_download.returncode:
        raise ArmSetupError(f"apt-get download failed: {done_download.stderr.strip()[-1500:]}")
    shutil.rmtree(sysroot, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        _check_output(["dpkg", "-x", str(deb), str(sysroot)], f"dpkg -x {deb.name}")
    done.write_text("\n".join(sorted(p.name for p in debs.glob("*.deb"))) + "\n")
    return sysroot


def _site(root: Path, say: Callable[[str], object]) -> Path:
    site = root / "site"
    done = root / "site.done"
    if not (done.is_file() and done.read_text().split() == list(WHEELS)):
        wheels = root / "wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        shutil.rmtree(site, ignore_errors=True)
        say(f"downloading aarch64 wheels: {', '.join(WHEELS)}")
        platforms = [arg for p in _WHEEL_PLATFORMS for arg in ("--platform", p)]
        _check_output([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                       "--only-binary=:all:", "--python-version", "3.11", "--implementation",
                       "cp", *platforms, "-d", str(wheels), *WHEELS], "pip download")
        site.mkdir(parents=True)
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
        done.write_text("\n".join(WHEELS) + "\n")
    # Always the installed runner (a package; an older copy may be a single module).
    (site / "larq_dybnn_runtime.py").unlink(missing_ok=True)
    shutil.rmtree(site / _RUNNER.name, ignore_errors=True)
    shutil.copytree(_RUNNER, site / _RUNNER.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return site


def build_op_library(lce_source: str | os.PathLike, output_dir: str | os.PathLike, *,
                     compiler: str = "aarch64-linux-gnu-g++",
                     print_fn: Callable[[str], object] = print) -> Path:
    """Cross-compile LCE's kernels and this package's registerer into one library.

    The library's name holds a hash of the sources, the flags and the compiler, so a
    changed LCE checkout is built again and an unchanged one is not.

    Arguments:
        lce_source: an LCE source folder: `larq_compute_engine/tflite/kernels/*.cc`
            with the headers they include (ruy, tflite, flatbuffers, gemmlowp) at
            the include paths LCE 0.16 uses.
        output_dir: where the library goes.
        compiler: the aarch64 C++ compiler.
        print_fn: receives progress lines.

    Returns:
        The library's path.

    Raises:
        FileNotFoundError: naming a kernel source missing from `lce_source`.
        ArmSetupError: if compiling fails (the compiler's message quoted).
    """
    source = Path(lce_source).resolve()
    files = [source / name for name in KERNEL_SOURCES]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"`lce_source`: no '{path}' (an LCE source folder holds "
                                    f"{', '.join(KERNEL_SOURCES)}).")
    digest = hashlib.sha256()
    for path in [*files, _REGISTERER]:
        digest.update(path.read_bytes())
    for header in sorted(source.rglob("*.h")):
        digest.update(str(header.relative_to(source)).encode() + header.read_bytes())
    digest.update(" ".join((compiler, *CXXFLAGS)).encode())
    output_dir = Path(output_dir)
    library = output_dir / f"liblce_ops-{digest.hexdigest()[:12]}.so"
    if library.is_file():
        return library
    build = output_dir / f"build-{os.getpid()}"
    build.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{source / p}" for p in _INCLUDES]
    say = print_fn
    say(f"compiling LCE's kernels for aarch64 from {source}")

    def compile_one(path: Path) -> Path:
        objects = build / (path.stem + ".o")
        _check_output([compiler, *CXXFLAGS, *includes, "-c", str(path), "-o", str(objects)],
                      f"compiling {path.name}")
        return objects

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(compile_one, [*files, _REGISTERER]))
    partial = build / library.name
    _check_output([compiler, "-shared", "-o", str(partial), *map(str, objects)], "linking")
    os.replace(partial, library)
    shutil.rmtree(build, ignore_errors=True)
    return library


def prepare(
    directory: str | os.PathLike,
    *,
    lce_source: str | os.PathLike,
    print_fn: Callable[[str], object] = print,
) -> ArmEnvironment:
    """Set up (or reuse) the emulated aarch64 environment in `directory`.

    Arguments:
        directory: the cache folder (created; reused by later calls).
        lce_source: an LCE source folder (see `build_op_library`).
        print_fn: receives progress lines.

    Returns:
        An `ArmEnvironment`, checked by starting the emulated Python once.

    Raises:
        ArmSetupError: off Debian, without root where packages must be installed, or
            when a download, build or the check fails (saying which).
        FileNotFoundError: for an `lce_source` without LCE's kernel sources.
    """
    root = Path(directory).resolve()
    with _locked(root):
        qemu = _host_tools(print_fn)
        sysroot = _sysroot(root, print_fn)
        site = _site(root, print_fn)
        library = build_op_library(lce_source, root / "lib", print_fn=print_fn)
    environment = ArmEnvironment(root=root, sysroot=sysroot, site=site, library=library,
                                 qemu=qemu)
    machine = environment.run("-c", "import platform; print(platform.machine())").stdout
    if machine.strip() != "aarch64":
        raise ArmSetupError(f"The emulated Python reports machine {machine.strip()!r}, not "
                            "aarch64.")
    return environment
