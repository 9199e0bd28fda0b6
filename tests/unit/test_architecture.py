"""The house plan holds: no import cycles, no private imports, the rules of ARCHITECTURE.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "listserv"
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, name: str) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in the file, nested ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [a.name for a in node.names]))
    return found


def graph() -> dict[str, set[str]]:
    """module -> the listserv modules it imports (a 'from pkg import mod' counts as pkg.mod)."""
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for target, names in imports_of(path, name):
            if not target.startswith("listserv"):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            edges[name] |= set(subs) or {target}
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, if there is any."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    """No module reaches itself through imports, counting imports inside functions."""
    assert cycle(graph()) is None


def test_no_module_imports_another_modules_private_names():
    """`from listserv.x import _y` is a shortcut through a wall: nothing does it."""
    offenders = [
        f"{name} imports {target}.{n}"
        for name, path in modules().items()
        for target, names in imports_of(path, name)
        if target.startswith("listserv")
        for n in names
        if n.startswith("_") and n != "__version__"
    ]
    assert offenders == []


def rules() -> list[tuple[str, list[str], list[str]]]:
    """(module, exceptions, forbidden) rows of the "may not import" table."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([\w.]+)`(?: \(all but ([^)]+)\))? \| (.+) \|$", line)
        if m:
            but = re.findall(r"`([\w.]+)`", m.group(2) or "")
            rows.append((m.group(1), but, re.findall(r"`([\w.]+)`", m.group(3))))
    return rows


def test_architecture_doc_has_the_rules_table():
    """The doc the newcomer reads is the one the test enforces."""
    assert len(rules()) >= 10


def inside(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


@pytest.mark.parametrize(("room", "exceptions", "forbidden"), rules(), ids=lambda v: str(v))
def test_rooms_import_only_what_architecture_md_allows(room, exceptions, forbidden):
    """Each row of ARCHITECTURE.md's "may not import" table holds for every module in the room."""
    edges = graph()
    broken = [
        f"{name} -> {target}"
        for name, targets in edges.items()
        if inside(name, room) and not any(inside(name, e) for e in exceptions)
        for target in targets
        for bad in forbidden
        if inside(target, bad) and not inside(name, bad)
    ]
    assert broken == []
