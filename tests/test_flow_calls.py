"""A flow called as a statement does nothing.

A flow (a function returning ``Flow[T]`` or ``Steps[T]``) is a generator: calling it
only makes the generator, and nothing is sent or read until a driver runs it or another
flow takes it with ``yield from``. Inside a flow, ``self._body.close()`` as a statement
looks like a call and silently does nothing. This check reads every flow in
``src/range_streams`` and fails on a statement that calls something named like a flow,
unless the call is listed below as one of the plain (non-flow) methods of the same name.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "range_streams"

# Statement calls inside flows that share a flow's name but are plain methods.
PLAIN = {
    "whole.close": "WholeFile.close, which frees a spool file",
    "self._whole.close": "WholeFile.close",
    "self.runtime.claims.release": "BlockClaims.release, a lock table",
    "flow.close": "a generator's own close(), which ends the flow",
    "sink.seek": "a temporary file's seek",
}


def _is_flow(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.FunctionDef)
        and node.returns is not None
        and ast.unparse(node.returns).split("[")[0] in ("Flow", "Steps")
    )


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def flow_statements(trees: dict[str, ast.Module]) -> list[str]:
    """``file:line call`` for each statement inside a flow that calls a flow-named
    function and drops what it returns, the ``PLAIN`` ones left out."""
    flows = [node for tree in trees.values() for node in ast.walk(tree) if _is_flow(node)]
    names = {node.name for node in flows if isinstance(node, ast.FunctionDef)}
    found = []
    for where, tree in trees.items():
        for flow in (node for node in ast.walk(tree) if _is_flow(node)):
            for node in ast.walk(flow):
                if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
                    continue
                if _called_name(node.value) in names:
                    func = ast.unparse(node.value.func)
                    if func not in PLAIN:
                        found.append(f"{where}:{node.lineno} {func}()")
    return found


def test_no_flow_is_called_as_a_statement_inside_a_flow() -> None:
    trees = {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(encoding="utf-8"))
        for path in PACKAGE.rglob("*.py")
    }
    assert sum(1 for tree in trees.values() for node in ast.walk(tree) if _is_flow(node)) > 50
    assert not flow_statements(trees), "use `yield from` (or list a plain method in PLAIN)"


def test_the_check_sees_a_dropped_flow() -> None:
    source = (
        "def close(self) -> Flow[None]:\n    yield\n"
        "def read(self) -> Flow[bytes]:\n"
        "    self.close()\n"  # dropped: the bug
        "    yield from self.close()\n"  # taken
        "    data = self.close()\n"  # kept for later: not a statement call
        "    flow.close()\n"  # plain, listed
        "    return b''\n"
    )
    assert flow_statements({"m.py": ast.parse(source)}) == ["m.py:4 self.close()"]
