"""The layout is the data flow: a stage imports only from the stages below it.

What two stages share (the run artifact, clip scoring, the LiteRT runner, the lock on a run)
lives in a stage below both, so that e.g. `infer/` and `export/` never import `train/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import vidaction

SRC = Path(vidaction.__file__).parent
# bottom to top; modules at the package root other than TOP are shared helpers
STAGES = ["io", "data", "models", "train", "evaluate", "infer", "export"]
TOP = {"cli", "cli_parser", "demo", "__main__"}  # may import everything
FACADE = "__init__"  # vidaction/__init__.py: the public `vidaction.load_run`, imported lazily


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "vidaction" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def test_every_stage_imports_only_from_stages_below_it():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if own in TOP or rel.parts == (FACADE + ".py",):
            continue
        level = STAGES.index(own) if own in STAGES else -1  # root helpers: below io
        for line, module in _imports(path):
            other = _stage(module)
            if other in TOP:
                wrong.append(f"{rel}:{line} imports {module} (the CLI layer)")
            elif other in STAGES and STAGES.index(other) > level:
                wrong.append(f"{rel}:{line} imports {module} ({other}/ is above {own}/)")
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from vidaction.train.fit import train\n")
    assert [m for _, m in _imports(bad)] == ["vidaction.train.fit"]
    assert STAGES.index(_stage("vidaction.train.fit")) > STAGES.index("models")
