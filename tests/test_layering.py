"""The sans-I/O layer stays pure: it never imports I/O, the clock or the asyncio layers."""

from __future__ import annotations

import ast
from pathlib import Path

import voicecore.sansio

FORBIDDEN = {
    "asyncio",
    "socket",
    "time",
    "selectors",
    "threading",
    "websockets",
    "aiohttp",
    "uvloop",
    "voicecore.runtime",
    "voicecore.transports",
    "voicecore.providers",
}


def imported_modules(path: Path) -> set[str]:
    """Every module name ``path`` imports (``from x import y`` counts as ``x``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_sansio_modules_import_no_io_and_no_clock() -> None:
    package = Path(voicecore.sansio.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) >= 2
    for module in modules:
        bad = {
            name
            for name in imported_modules(module)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
        }
        assert not bad, f"{module.name} imports {sorted(bad)}"


def test_the_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom asyncio import sleep\nfrom voicecore.runtime.session import x\n")
    assert {"time", "asyncio", "voicecore.runtime.session"} <= imported_modules(sample)
