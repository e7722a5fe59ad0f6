"""Module docstrings stay short and point at the pages under ``docs/``, which hold the equations,
assumptions and sources: a module docstring of the product packages longer than ``MAX_LINES``
fails, every ``docs/...md`` path named in a docstring must exist, and the pages' links must
resolve. Each check is also run on a planted tree, so it cannot pass vacuously."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("models", "goldstress", "tasks", "flows", "service")
SCRIPTS = ("bench", "expectations")
MAX_LINES = 12
DOC_PATH = re.compile(r"docs/[\w./-]+\.md")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _modules(root: Path, packages: tuple[str, ...]) -> list[Path]:
    return sorted(p for pkg in packages for p in (root / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def _docstrings(tree: ast.Module) -> list[str]:
    """Docstrings of the module, its classes and its functions."""
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef))]
    return [d for n in nodes if (d := ast.get_docstring(n)) is not None]


def long_module_docstrings(root: Path, packages: tuple[str, ...], max_lines: int = MAX_LINES) -> list[str]:
    """``"<path>: <n> lines"`` for every module whose docstring has more than ``max_lines`` lines."""
    out = []
    for path in _modules(root, packages):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if doc is not None and len(doc.splitlines()) > max_lines:
            out.append(f"{path.relative_to(root)}: {len(doc.splitlines())} lines")
    return out


def missing_doc_paths(root: Path, packages: tuple[str, ...]) -> list[str]:
    """``"<path>: <docs path>"`` for every ``docs/...md`` path named in a docstring that does not exist."""
    out = []
    for path in _modules(root, packages):
        for doc in _docstrings(ast.parse(path.read_text(encoding="utf-8"))):
            out += [f"{path.relative_to(root)}: {m}" for m in DOC_PATH.findall(doc) if not (root / m).is_file()]
    return out


def broken_page_links(root: Path) -> list[str]:
    """Relative links of the pages under ``docs/`` that do not resolve, and pages ``docs/README.md`` does not list."""
    docs = root / "docs"
    out = []
    for page in sorted(docs.rglob("*.md")):
        for target in MD_LINK.findall(page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                out.append(f"{page.relative_to(root)}: {target}")
    index = docs / "README.md"
    listed = (
        {(docs / t).resolve() for t in MD_LINK.findall(index.read_text(encoding="utf-8"))} if index.is_file() else set()
    )
    out += [
        f"not in docs/README.md: {p.relative_to(root)}"
        for p in sorted(docs.rglob("*.md"))
        if p != index and p.resolve() not in listed
    ]
    return out


def test_no_module_docstring_of_the_product_is_longer_than_twelve_lines() -> None:
    assert long_module_docstrings(ROOT, PRODUCT) == []


def test_every_docs_path_named_in_a_docstring_exists() -> None:
    assert missing_doc_paths(ROOT, PRODUCT + SCRIPTS) == []


def test_the_pages_links_resolve_and_the_index_lists_every_page() -> None:
    assert (ROOT / "docs" / "README.md").is_file()
    assert broken_page_links(ROOT) == []


def _module(root: Path, rel: str, docstring: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'"""{docstring}"""\n\nX = 1\n', encoding="utf-8")


@pytest.mark.parametrize(("n_lines", "flagged"), [(MAX_LINES, False), (MAX_LINES + 1, True)])
def test_a_planted_long_module_docstring_is_flagged(tmp_path: Path, n_lines: int, flagged: bool) -> None:
    _module(tmp_path, "models/short.py", "One line.")
    _module(tmp_path, "models/token/planted.py", "\n".join(f"line {i}" for i in range(n_lines)))
    found = long_module_docstrings(tmp_path, ("models",))
    assert found == ([f"models/token/planted.py: {n_lines} lines"] if flagged else [])


def test_a_planted_missing_docs_path_is_flagged(tmp_path: Path) -> None:
    _module(tmp_path, "models/planted.py", "Pool.\n\nEquations: docs/models/planted.md.")
    (tmp_path / "models" / "fn.py").write_text(
        'def f():\n    """Derivation in docs/models/gone.md."""\n', encoding="utf-8"
    )
    assert missing_doc_paths(tmp_path, ("models",)) == [
        "models/fn.py: docs/models/gone.md",
        "models/planted.py: docs/models/planted.md",
    ]
    for name in ("planted", "gone"):
        (tmp_path / "docs" / "models").mkdir(parents=True, exist_ok=True)
        (tmp_path / "docs" / "models" / f"{name}.md").write_text("# page\n", encoding="utf-8")
    assert missing_doc_paths(tmp_path, ("models",)) == []


def test_a_planted_broken_link_and_an_unlisted_page_are_flagged(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "models").mkdir(parents=True)
    (docs / "README.md").write_text("- [models/a.md](models/a.md): a\n", encoding="utf-8")
    (docs / "models" / "a.md").write_text("See [b](b.md#section) and [web](https://example.org).\n", encoding="utf-8")
    (docs / "models" / "c.md").write_text("# c\n", encoding="utf-8")
    assert broken_page_links(tmp_path) == ["docs/models/a.md: b.md", "not in docs/README.md: docs/models/c.md"]
