"""The CLI and the service reach `transfer/` and `index/` only through the shop opener (`recsys.shop.catalog`),
and `common/` imports nothing of ours: checked on the sources' import statements (AST), not by running them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in a source file, nested (lazy) imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _sources(*parts: str) -> list[Path]:
    files = []
    for part in parts:
        target = ROOT / part
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target] if target.exists() else []
    return files


CLI_AND_SERVICE = _sources("recsys/cli.py", "recsys/cli", "recsys/service")


def test_the_sources_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in CLI_AND_SERVICE}
    assert "recsys/service/app.py" in names
    assert any(n == "recsys/cli.py" or n.startswith("recsys/cli/") for n in names)


@pytest.mark.parametrize("path", CLI_AND_SERVICE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_cli_and_service_reach_transfer_and_index_only_through_the_shop_opener(path):
    bad = [f"line {line}: {module}" for line, module in _imported_modules(path) if module in {"transfer", "index"}]
    assert not bad, f"{path.relative_to(ROOT)} imports transfer/index directly (use recsys.shop.catalog): {bad}"


@pytest.mark.parametrize("path", _sources("common"), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_common_imports_nothing_of_ours(path):
    ours = {"common", "transfer", "index", "recsys"}
    bad = [f"line {line}: {m}" for line, m in _imported_modules(path) if m in ours - {"common"}]
    assert not bad, f"{path.relative_to(ROOT)}: {bad}"


def test_the_door_names_resolve():
    import recsys.shop.catalog as shop

    for name, module in shop.DOOR.items():
        assert getattr(shop, name).__module__.split(".")[0] == module.split(".")[0], name
