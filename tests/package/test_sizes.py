"""Modules stay small enough to read: no function in src/ over 60 lines, and no file over 400
lines unless its module docstring says why (a line starting `Over 400 lines:`)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MAX_FUNCTION = 60
MAX_FILE = 400
REASON = "Over 400 lines:"


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def long_functions(path: Path, root: Path = SRC) -> list[str]:
    """`file:line name (N lines)` of each function of `path` longer than MAX_FUNCTION lines."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION
    ]


def long_file(path: Path, root: Path = SRC) -> str | None:
    """`file (N lines)` when `path` is over MAX_FILE lines without a written reason."""
    text = path.read_text()
    lines = len(text.splitlines())
    docstring = ast.get_docstring(ast.parse(text)) or ""
    if lines > MAX_FILE and not any(line.startswith(REASON) for line in docstring.splitlines()):
        return f"{path.relative_to(root)} ({lines} lines)"
    return None


def test_no_function_over_60_lines() -> None:
    assert [f for path in _sources() for f in long_functions(path)] == []


def test_no_file_over_400_lines_without_a_reason() -> None:
    assert [f for path in _sources() if (f := long_file(path))] == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION))
    long = tmp_path / "long.py"
    long.write_text(f'"""A module."""\n\n\ndef f():\n{body}\n' + "\n" * MAX_FILE)
    assert long_functions(long, tmp_path) == [f"long.py:4 f ({MAX_FUNCTION + 1} lines)"]
    assert long_file(long, tmp_path) == f"long.py ({MAX_FILE + MAX_FUNCTION + 4} lines)"
    long.write_text(f'"""A module.\n\n{REASON} one table."""\n' + "\n" * MAX_FILE)
    assert long_file(long, tmp_path) is None
