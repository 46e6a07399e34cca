"""The README's quick start stays true: its app is examples/app.py (what
`make serve` serves), and its client snippet, run against that app, gives
the results its comments show."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_readme_app_is_what_make_serve_serves() -> None:
    assert "examples/app.py" in (ROOT / "Makefile").read_text()
    app, served = BLOCKS[0], (ROOT / "examples" / "app.py").read_text()
    assert app in served


def test_the_client_snippet_gives_what_its_comments_say(make_server: Any) -> None:
    snippet = next(b for b in BLOCKS if b.startswith("import tarantool"))
    server = make_server(app=str(ROOT / "examples" / "app.py"))
    code = snippet.replace('"127.0.0.1", 3301', f'"127.0.0.1", {server.port}')
    scope: dict[str, Any] = {}
    checked = 0
    for stmt in ast.parse(code).body:
        line = code.splitlines()[stmt.lineno - 1]
        if isinstance(stmt, ast.Expr) and "# ->" in line:
            got = eval(compile(ast.Expression(stmt.value), "README", "eval"), scope)  # noqa: S307 - the README's own code
            assert list(got) == ast.literal_eval(line.split("# ->")[1].strip()), line
            checked += 1
        else:
            exec(compile(ast.Module([stmt], []), "README", "exec"), scope)  # noqa: S102 - the README's own code
    assert checked >= 2
    scope["conn"].close()


def test_every_option_is_in_the_readme() -> None:
    from styx.cli import build_parser

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    options = [a.option_strings[0] for a in serve._actions if a.option_strings and a.dest != "help"]
    missing = [o for o in options if f"`{o}`" not in README]
    assert not missing and len(options) > 15
