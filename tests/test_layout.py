"""The source tree reads as layers: library (larq_dybnn/), models (zoo/), export
(converter/), application (application/: training, sweep, commands, device tools),
no module imports one that imports it back (imports inside functions included), and
the library is only a library: nothing in larq_dybnn/ runs other programs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

def _package_dirs() -> dict[str, str]:
    """Installed package -> source folder: setup.py's own `package_dir`."""
    for node in ast.walk(ast.parse((REPO / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "package_dir":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no package_dir")


FOLDERS = _package_dirs()

#: Top-level modules (setup.py's py_modules): the CLI's parser and the device runner.
TOP_LEVEL = ("larq_dybnn_cli",)

#: The layers each layer may import (a lower layer never imports a higher one).
ALLOWED = {
    "library": {"library"},
    "zoo": {"library", "zoo"},
    "converter": {"library", "zoo", "converter", "runtime"},  # the file check
    "runtime": {"runtime"},  # runs on a device with tflite-runtime and numpy only
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts
                     if p != "__init__"]
            modules[".".join([package, *parts])] = path
    for name in TOP_LEVEL:
        modules[name] = REPO / f"{name}.py"
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package that `name` imports anywhere in its source."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_command_line_and_the_runtime_are_in_the_graph():
    assert GRAPH["larq_dybnn_cli"] == {"larq_dybnn.commands", "larq_dybnn._gc"}
    assert all(o.startswith("larq_dybnn_runtime") for o in GRAPH["larq_dybnn_runtime"])


def test_every_package_folder_is_mapped_in_setup_py():
    setup = (REPO / "setup.py").read_text()
    assert {"larq_dybnn.training", "larq_dybnn.sweep", "larq_dybnn.commands",
            "larq_dybnn.zoo", "larq_dybnn.converter"} <= set(FOLDERS)
    for package, folder in FOLDERS.items():
        assert (REPO / folder / "__init__.py").is_file(), folder
        assert f'"{package}"' in setup, package
    # The library folder holds the library only.
    assert not (REPO / "larq_dybnn" / "training").exists()
    assert not (REPO / "larq_dybnn" / "sweep").exists()


def test_no_import_cycles():
    cycles, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for other in sorted(GRAPH[module]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in state:
                visit(other)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _layer(module: str) -> str:
    for prefix, layer in (("larq_dybnn_cli", "application"),
                          ("larq_dybnn_runtime", "runtime"),
                          ("larq_dybnn.training", "application"),
                          ("larq_dybnn.sweep", "application"),
                          ("larq_dybnn.commands", "application"),
                          ("larq_dybnn.device", "application"),
                          ("larq_dybnn.arm", "application"),  # deprecated alias of device
                          ("larq_dybnn.zoo", "zoo"), ("larq_dybnn.converter", "converter")):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return "library"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lower_layers_never_import_higher_ones(layer):
    wrong = sorted(f"{module} imports {other}"
                   for module, imports in GRAPH.items() if _layer(module) == layer
                   for other in imports if _layer(other) not in ALLOWED[layer])
    assert not wrong, wrong


def test_training_does_not_import_the_sweep_or_the_commands():
    wrong = sorted(f"{m} imports {o}" for m, imports in GRAPH.items()
                   if m.startswith("larq_dybnn.training") for o in imports
                   if o.startswith(("larq_dybnn.sweep", "larq_dybnn.commands")))
    assert not wrong, wrong


#: What running another program takes: a library module imports none of these.
PROGRAM_RUNNERS = {"subprocess", "multiprocessing", "pty", "shlex"}


@pytest.mark.parametrize("layer", ["library", "zoo", "converter"])
def test_the_library_runs_no_programs(layer):
    """Layers, models and export are libraries: setting up machines (apt, dpkg, cross
    compilers, qemu) lives in the application's device tools and the benchmarks."""
    wrong = []
    for module, path in MODULES.items():
        if _layer(module) != layer:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{module} imports {n}" for n in names
                      if n.split(".")[0] in PROGRAM_RUNNERS]
            if (isinstance(node, ast.Attribute) and node.attr in ("system", "popen", "execv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                wrong.append(f"{module} calls os.{node.attr}")
    assert not wrong, wrong
    assert not (REPO / "larq_dybnn" / "arm").exists()


def _body_lines(node: ast.FunctionDef) -> int:
    """Lines of a function after its docstring."""
    first = node.body[0]
    has_docstring = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                     and isinstance(first.value.value, str))
    start = node.body[1].lineno if has_docstring and len(node.body) > 1 else first.lineno
    return node.end_lineno - start + 1


def test_no_function_is_longer_than_100_lines():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _body_lines(node) > 100:
                    long.append(f"{module}.{node.name}: {_body_lines(node)} lines")
    assert not long, long
