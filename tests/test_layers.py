"""The layering rule of DESIGN.md: nn/, data/ and metrics/ never import models/, train/, eval/, viz/ or the CLI."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "slotvideo"
LOWER = ("nn", "data", "metrics")
UPPER = ("models", "train", "eval", "viz", "cli", "commands")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = path.relative_to(SRC.parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - node.level + 1])
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


def test_lower_layers_do_not_import_upper_layers():
    bad = []
    for layer in LOWER:
        for path in (SRC / layer).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "slotvideo" and len(parts) > 1 and parts[1] in UPPER:
                    bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)
