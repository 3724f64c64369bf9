"""The module layout of docs/architecture.md, checked: who may import whom, no cycles, one owner per concept.

Imports are read with ``ast`` from the source, lazy (function-level) imports included, so a cycle hidden in a
function body fails here instead of at some user's first call.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "llamawiki"
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")
SCRIPTS = ["build_dataset.py", "particiona.py", "finetune.py", "rag.py", "chat_cpu.py", "chat_gpu.py", "compare.py"]

# module -> the package modules it may import (docs/architecture.md, "Camadas"). Lower layers never import
# upper ones; a new edge has to be added here and in the doc, on purpose.
ALLOWED = {
    "fileio": set(),
    "prompt": {"fileio"},
    "config": {"fileio"},
    "text": {"fileio"},
    "options": {"fileio"},
    "pages": {"fileio"},
    "matching": {"text"},
    "pasted": set(),
    "answer_parse": {"text", "matching", "pasted"},
    "acerto": {"text", "matching", "pasted", "answer_parse"},
    "metrics": {"text", "acerto", "matching"},
    "checks": {"fileio"},
    "lora_gguf": {"fileio", "checks"},
    "downloads": {"fileio"},
    "wikitext": {"pages", "text"},
    "dump": {"pages", "wikitext"},
    "multistream": {"pages", "fileio"},
    "categories": {"dump", "fileio", "pages", "text", "wikitext"},
    "records": {"prompt", "fileio", "text"},
    "split": {"records", "text", "fileio"},
    "llm_questions": {"prompt", "fileio", "config", "models", "options", "records", "text"},
    "dataset": {"prompt", "fileio", "records", "text", "wikitext", "dump", "pages", "categories", "llm_questions"},
    "models": {"prompt", "fileio", "checks", "lora_gguf", "options"},
    "indexing": {"fileio", "text", "dump", "pages", "wikitext", "categories"},
    "retrieval": {"prompt", "fileio", "options", "indexing"},
    "training": {"prompt", "records", "fileio", "checks", "models", "options"},
    "chat": {"fileio", "models", "options", "retrieval", "prompt"},
    "exposure": {"fileio", "matching", "metrics", "records", "split", "text"},
    "diagnosis": {"exposure", "matching", "text"},
    "report": {"fileio", "acerto", "matching", "metrics", "split", "exposure", "diagnosis"},
    "evaluation": {
        "prompt",
        "fileio",
        "lora_gguf",
        "matching",
        "metrics",
        "models",
        "options",
        "text",
        "retrieval",
        "report",
        "exposure",
        "diagnosis",
    },
    "runs": {"fileio"},
    "readme": {"fileio", "runs"},
    "reference": {"fileio", "runs", "readme"},
}


def package_imports(path: Path) -> set[str]:
    """The llamawiki modules a file imports, at any depth (``from .x import``, ``from . import x``,
    ``from llamawiki.x import``, ``import llamawiki.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1 and not mod:
                found.update(a.name for a in node.names)
            elif node.level == 1:
                found.add(mod.split(".")[0])
            elif mod == "llamawiki":
                found.update(a.name for a in node.names)
            elif mod.startswith("llamawiki."):
                found.add(mod.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("llamawiki."))
    return found & set(MODULES)


GRAPH = {m: package_imports(PKG / f"{m}.py") - {m} for m in MODULES}


def test_every_module_has_a_place_in_the_layers():
    assert sorted(ALLOWED) == MODULES, "a module was added or removed: give it a row in ALLOWED and in the doc"


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_what_its_layer_allows(module):
    extra = GRAPH[module] - ALLOWED[module]
    assert not extra, f"llamawiki.{module} imports {sorted(extra)}, outside its layer (docs/architecture.md)"


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n) :] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m)


def test_package_imports_in_any_order():
    """Each module imports on its own in a fresh interpreter (an import-order cycle would fail one of them)."""
    import subprocess
    import sys

    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module('llamawiki.' + m)\n"
    for order in (MODULES, MODULES[::-1]):
        r = subprocess.run([sys.executable, "-c", code, *order], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]


def test_training_does_not_know_how_records_are_made():
    """Training reads records (llamawiki.records); how the dump became questions is dataset's business."""
    assert not GRAPH["training"] & {"dataset", "wikitext", "dump", "pages"}


def test_defaults_of_generation_live_in_options():
    """n_ctx / max_new_tokens defaults are written once (llamawiki.options), not as literals in each module."""
    offenders = []
    for m in MODULES:
        if m == "options":
            continue
        tree = ast.parse((PKG / f"{m}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + list(node.args.defaults)
                defaults += list(node.args.kw_defaults)
                for a, d in zip(args, defaults, strict=True):
                    if a.arg in ("n_ctx", "max_new_tokens") and isinstance(d, ast.Constant) and d.value is not None:
                        offenders.append(f"{m}.{node.name}({a.arg}={d.value})")
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if (
                    node.target.id in ("n_ctx", "max_new_tokens")
                    and isinstance(node.value, ast.Constant)
                    and node.value.value is not None
                ):
                    offenders.append(f"{m}: {node.target.id} = {node.value.value}")
    assert not offenders, offenders


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_thin_and_use_public_names(script):
    """A script parses flags and calls the package: no private (``_name``) imports from llamawiki, and the
    model/generation flags come from llamawiki.options wherever a model is loaded."""
    src = (ROOT / script).read_text(encoding="utf-8")
    tree = ast.parse(src)
    private = [
        f"{n.module}.{a.name}"
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("llamawiki")
        for a in n.names
        if a.name.startswith("_")
    ]
    assert not private, f"{script} imports private names {private}"
    if re.search(r"load_generator|run_comparison|RagChat", src):
        assert "options" in src and not re.search(r"add_argument\(\s*[\"']--(n-ctx|max-new-tokens|temperature)\b", src)


def test_architecture_doc_lists_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [m for m in MODULES if f"llamawiki.{m}" not in doc and f"`{m}`" not in doc]
    assert not missing, f"docs/architecture.md does not describe {missing}"
