"""Run larq-dybnn's exported `.tflite` files on a device: tflite-runtime, LCE's op
library and numpy (Pillow for photos), no TensorFlow.

Larq Compute Engine publishes no aarch64 Python package; its custom ops (LceQuantize,
LceDequantize, LceBconv2d, LceBMaxPool2d) come from a shared library built from LCE's
kernel sources (`larq-dybnn lce-sources`) with the project's registerer. The
`larq-dybnn-runtime` wheel (`make wheel-arm`) bundles that library, this package and
the console script `larq-dybnn-run`:

    larq-dybnn-run model.tflite photo.jpg            # top classes by name
    larq-dybnn-run model.tflite *.jpg --json         # path, index, label, probabilities

`Runner` runs prepared samples; `Classifier` (in `larq_dybnn_runtime.classify`) reads the
input contract stored in the file and classifies images. `python -m larq_dybnn_runtime
MODEL --inputs x.npy` runs prepared `.npy` samples (the project's emulated tests and
`larq-dybnn verify-arm` use it under qemu).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import sys
import time
from typing import Sequence

import numpy as np

__all__ = ["KERNELS", "kernel_name", "load_op_library", "bundled_library", "Runner", "main"]

#: Binary-conv kernels by name (the names `larq_dybnn.converter.interpreter.KERNELS`
#: uses on x86), and the registerer function of the op library that installs LCE's
#: ops with that kernel. "bgemm" is what LCE runs on devices.
KERNELS = {
    "bgemm": "LarqDybnnRegisterBgemm",
    "indirect_bgemm": "LarqDybnnRegisterIndirectBgemm",
    "reference": "LarqDybnnRegisterReference",
}
#: Old kernel names, accepted for one release with a DeprecationWarning.
KERNEL_ALIASES = {"indirect": "indirect_bgemm"}


def kernel_name(kernel: str) -> str:
    """`kernel` as a `KERNELS` key: an old name is translated, with a DeprecationWarning.

    Raises:
        ValueError: for an unknown kernel.
    """
    if kernel in KERNEL_ALIASES:
        import warnings

        warnings.warn(f"the kernel name {kernel!r} is deprecated and will be removed in the "
                      f"next release; use {KERNEL_ALIASES[kernel]!r}.", DeprecationWarning,
                      stacklevel=3)
        return KERNEL_ALIASES[kernel]
    if kernel not in KERNELS:
        raise ValueError(f"`kernel` must be one of {sorted(KERNELS)}, got {kernel!r}.")
    return kernel

_LOADED: dict[str, ctypes.CDLL] = {}


def bundled_library() -> str | None:
    """The LCE op library installed with this package (the aarch64 wheel), or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "liblce_ops.so")
    return path if os.path.isfile(path) else None


def load_op_library(path: str) -> ctypes.CDLL:
    """Load LCE's op library so that the interpreter finds its registerers.

    Arguments:
        path: the shared library (built by `larq_dybnn.device.emulation.build_op_library`).

    Returns:
        The loaded library (loaded once per process, with RTLD_GLOBAL).

    Raises:
        FileNotFoundError: if `path` does not exist.
        OSError: if it cannot be loaded (another architecture, missing symbols).
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No LCE op library at '{path}'.")
    if path not in _LOADED:
        _import_interpreter()
        _LOADED[path] = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    return _LOADED[path]


def _import_interpreter():
    """Import tflite-runtime with its extension's symbols global: LCE's kernels call
    the tflite and ruy functions it exports."""
    if "tflite_runtime.interpreter" in sys.modules:
        module = sys.modules["tflite_runtime.interpreter"]
    else:
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | ctypes.RTLD_GLOBAL)
        try:
            import tflite_runtime.interpreter as module
        finally:
            sys.setdlopenflags(flags)
    return module.InterpreterWithCustomOps


class Runner:
    """One interpreter of a `.tflite` file with LCE's ops on a chosen kernel.

    Arguments:
        model_path: the `.tflite` file.
        library: LCE's op library; None for the one installed with this package.
        kernel: a `KERNELS` key.
        threads: interpreter threads.
        xnnpack: let tflite-runtime apply its default XNNPACK delegate to the float ops
            (what `tflite_runtime` does on a device unless told otherwise). XNNPACK
            sums in another order than TFLite's builtin kernels, so its float results
            differ by rounding; False runs the builtin kernels, as LCE's own Python
            interpreter does by default.

    Raises:
        ValueError: for an unknown `kernel` or a non-positive `threads`, or a model
            file that is not whole (`larq_dybnn_runtime.check`).
        FileNotFoundError: for a missing model or library.
    """

    def __init__(self, model_path: str, *, library: str | None = None, kernel: str = "bgemm",
                 threads: int = 1, xnnpack: bool = True):
        kernel = kernel_name(kernel)
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"`threads` must be a positive integer, got {threads!r}.")
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"No model at '{model_path}'.")
        from larq_dybnn_runtime.check import check_flatbuffer

        with open(model_path, "rb") as handle:
            check_flatbuffer(handle.read(), source=f"'{model_path}'")
        library = library or bundled_library()
        if library is None:
            raise FileNotFoundError("No LCE op library: pass `library` (none is installed "
                                    "with this package).")
        load_op_library(library)
        InterpreterWithCustomOps = _import_interpreter()
        from tflite_runtime.interpreter import OpResolverType

        self.kernel = kernel
        self.interpreter = InterpreterWithCustomOps(
            model_path=model_path, custom_op_registerers=[KERNELS[kernel]],
            num_threads=threads, experimental_op_resolver_type=(
                OpResolverType.AUTO if xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The model's input shape without the batch axis."""
        return tuple(int(d) for d in self._input["shape"][1:])

    def predict(self, samples: np.ndarray) -> np.ndarray:
        """Outputs for a batch of prepared samples, one sample per invocation.

        Raises:
            ValueError: if `samples` are not `(N, *input_shape)`.
        """
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != len(self.input_shape) + 1 or samples.shape[1:] != self.input_shape:
            raise ValueError(f"`samples` must be (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {samples.shape}.")
        outputs = []
        for sample in samples:
            self.interpreter.set_tensor(self._input["index"], sample[None])
            self.interpreter.invoke()
            outputs.append(self.interpreter.get_tensor(self._output["index"])[0].copy())
        return np.stack(outputs)


def main(argv: Sequence[str] | None = None) -> int:
    """The runner's command line (see the module docstring).

    Returns:
        The exit status (2 for bad arguments or files).
    """
    parser = argparse.ArgumentParser(prog="python -m larq_dybnn_runtime",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the .tflite file")
    parser.add_argument("--library", default=bundled_library(),
                        help="LCE's op library (.so); default: the one installed with "
                        "this package")
    parser.add_argument("--inputs", required=True, help=".npy of prepared float32 samples")
    parser.add_argument("--outputs", help="write the outputs here (.npy; .npz with one "
                        "array per kernel when several are given)")
    parser.add_argument("--kernel", default="bgemm",
                        help=f"one of {', '.join(sorted(KERNELS))}, or several, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-xnnpack", action="store_true",
                        help="run float ops on TFLite's builtin kernels, not XNNPACK")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the samples this many times (for cost measurements)")
    args = parser.parse_args(argv)
    if args.library is None:
        parser.error("--library is required (no LCE op library is installed with this "
                     "package)")
    if not 1 <= args.repeat <= 1_000_000:
        parser.error(f"--repeat must be between 1 and 1000000, got {args.repeat}")
    if not 1 <= args.threads <= 256:
        parser.error(f"--threads must be between 1 and 256, got {args.threads}")
    kernels = [k.strip() for k in args.kernel.split(",") if k.strip()]
    if args.outputs and os.path.realpath(args.outputs) in {
            os.path.realpath(p) for p in (args.model, args.library, args.inputs)}:
        print(f"larq_dybnn_runtime: error: --outputs '{args.outputs}' is one of the input "
              "files; refusing to overwrite it.", file=sys.stderr)
        return 2
    results = {}
    try:
        samples = np.load(args.inputs)
        for kernel in kernels:
            runner = Runner(args.model, library=args.library, kernel=kernel,
                            threads=args.threads, xnnpack=not args.no_xnnpack)
            started = time.perf_counter()
            for _ in range(args.repeat):
                results[kernel] = runner.predict(samples)
            print(f"{args.model}: {len(samples)} samples x {args.repeat} on the {kernel} "
                  f"kernel in {time.perf_counter() - started:.3f} s")
    except (OSError, ValueError, RuntimeError) as error:
        print(f"larq_dybnn_runtime: error: {error}", file=sys.stderr)
        return 2
    if args.outputs:
        try:
            _write_outputs(args.outputs, results, kernels[-1])
        except OSError as error:
            print(f"larq_dybnn_runtime: error: {error}", file=sys.stderr)
            return 2
    return 0


def _write_outputs(path: str, results: dict, last: str) -> None:
    """Write the outputs atomically, never over a link, device or folder."""
    import stat
    import tempfile

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and (not stat.S_ISREG(info.st_mode) or info.st_nlink > 1):
        raise OSError(f"Cannot write '{path}': it is not an ordinary file; refusing to "
                      "write over it.")
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".outputs.tmp-", suffix=os.path.splitext(path)[1],
                                     dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            if path.endswith(".npz"):
                np.savez(handle, **results)
            else:
                np.save(handle, results[last])
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


if __name__ == "__main__":
    sys.exit(main())
