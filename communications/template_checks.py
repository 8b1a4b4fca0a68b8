"""The checks of a template's text when the catalogue loads: it parses, it keeps
to its channel's blocks, it uses only the variables the catalogue declares, and
no name starting with `_`. Each failure names the file and the line."""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2 import meta, nodes

from communications.template_catalogue_file import CATALOGUE_FILE
from communications.template_errors import TemplateError


def compile_checked(
    relative: str,
    allowed: frozenset[str] | set[str],
    blocks: tuple[str, ...],
    envs: list[jinja2.Environment],
) -> list[jinja2.Template]:
    """The file compiled in each of `envs`; `TemplateError` when its text fails a check."""
    env = envs[0]
    assert env.loader is not None
    try:
        source, filename, _ = env.loader.get_source(env, relative)
        tree = env.parse(source, relative, filename)
        compiled = [each.get_template(relative) for each in envs]
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{relative}, line {error.lineno}: {error.message}") from error
    if blocks:
        _check_blocks(relative, tree, blocks)
    _check_variables(relative, tree, allowed)
    _check_private_names(relative, tree)
    return compiled


def _check_blocks(relative: str, tree: nodes.Template, expected: tuple[str, ...]) -> None:
    for node in tree.body:
        outside = not isinstance(node, nodes.Block) and not (
            isinstance(node, nodes.Output)
            and all(
                isinstance(part, nodes.TemplateData) and not part.data.strip()
                for part in node.nodes
            )
        )
        if outside:
            raise TemplateError(
                f"{relative}, line {node.lineno}: everything must be inside the blocks {', '.join(expected)}"
            )
    found = {block.name: block.lineno for block in tree.find_all(nodes.Block)}
    for block, line in found.items():
        if block not in expected:
            raise TemplateError(
                f"{relative}, line {line}: unexpected block {block!r}; expected {', '.join(expected)}"
            )
    missing = [block for block in expected if block not in found]
    if missing:
        raise TemplateError(f"{relative}: missing block(s) {', '.join(missing)}")


def _check_variables(
    relative: str, tree: nodes.Template, allowed: frozenset[str] | set[str]
) -> None:
    """Every free variable (not bound by for/set/macro/import) must be declared in the catalogue."""
    undeclared = meta.find_undeclared_variables(tree) - allowed
    if not undeclared:
        return
    lines = {
        name: min(
            node.lineno
            for node in tree.find_all(nodes.Name)
            if node.name == name and node.ctx == "load"
        )
        for name in undeclared
    }
    uses = ", ".join(
        f"{name!r} (line {line})" for name, line in sorted(lines.items(), key=lambda item: item[1])
    )
    raise TemplateError(f"{relative}: variable(s) not declared in {CATALOGUE_FILE}: {uses}")


def _check_private_names(relative: str, tree: nodes.Template) -> None:
    """No `x._y`, `x['_y']` or `x|attr('_y')`: names starting with `_` reach Python's
    internals (`''.__class__`, `self._TemplateReference__context`). The sandbox also
    refuses them when rendering; this names the file and line when loading."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name: Any = node.attr
        elif isinstance(node, nodes.Getitem):
            name = node.arg.value if isinstance(node.arg, nodes.Const) else None
        else:
            assert isinstance(node, nodes.Filter)
            name = node.args[0].value if node.name == "attr" and node.args and isinstance(
                node.args[0], nodes.Const) else None
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateError(
                f"{relative}, line {node.lineno}: {name!r} is private; "
                "message templates may not use names starting with '_'"
            )

