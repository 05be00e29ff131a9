"""The layout: no import cycle among the modules; the installed packages need no checkout."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each package and the folder it lies in (the inference package is its own distribution).
PACKAGES = {
    "keras_vae": ROOT,
    "keras_vae_inference": ROOT / "inference",
    "pipelines": ROOT,
    "benchmarks": ROOT,
    "tests": ROOT,
}
# What lies only in a checkout, outside the wheels.
CHECKOUT_ONLY = ("benchmarks", "tests")


def module_imports():
    """{module: modules of this repository it imports}, from the source."""
    graph = {}
    for package, folder in PACKAGES.items():
        for path in (folder / package).rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            imported = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or node.level):
                    # A relative import names a module of this one's package.
                    base = ".".join(parts[: len(parts) - node.level]) if node.level else ""
                    module = ".".join(filter(None, [base, node.module]))
                    imported |= {module, *(f"{module}.{a.name}" for a in node.names)}
                elif isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
            graph[name] = imported
    return {name: sorted(imported & set(graph) - {name}) for name, imported in graph.items()}


def find_cycle(graph):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for neighbour in graph[node]:
            if state.get(neighbour) == "open":
                return [*path, node, neighbour]
            if neighbour not in state and (cycle := visit(neighbour, [*path, node])):
                return cycle
        state[node] = "done"
        return None

    for node in graph:
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": []}) is None


def test_no_module_imports_itself_through_others():
    graph = module_imports()
    assert {"keras_vae.vae", "keras_vae.run", "pipelines.train"} <= set(graph)
    # A package's __init__ importing its own modules is not a cycle of concepts.
    graph = {
        name: [other for other in imported if not name.startswith(other + ".")]
        for name, imported in graph.items()
    }
    assert find_cycle(graph) is None


def test_the_inference_package_imports_nothing_of_the_library():
    graph = module_imports()
    inference = {
        name: imported for name, imported in graph.items()
        if name.startswith("keras_vae_inference")
    }  # fmt: skip
    assert inference and not any(
        other.startswith(("keras_vae.", "pipelines")) or other == "keras_vae"
        for imported in inference.values()
        for other in imported
    )


def test_the_installed_packages_import_nothing_that_only_a_checkout_has():
    graph = module_imports()
    assert {"benchmarks.serving", "tests.support.servers"} <= set(graph)
    installed = {name: imported for name, imported in graph.items()
                 if not name.startswith(CHECKOUT_ONLY)}  # fmt: skip
    assert {
        name: [other for other in imported if other.startswith(CHECKOUT_ONLY)]
        for name, imported in installed.items()
        if any(other.startswith(CHECKOUT_ONLY) for other in imported)
    } == {}
