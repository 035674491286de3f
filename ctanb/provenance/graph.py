"""An SVG picture of a provenance graph, drawn by graphviz ``dot``.

The DOT text is written here (so the styling is ours and no Python binding is
needed) and rendered by the ``dot`` binary in a subprocess. Styling follows the
W3C PROV convention: entities are yellow ellipses, activities blue rectangles,
agents orange "house" shapes; each activity lists its version, status and
parameters, each entity its location, data level and hash prefix.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from .._errors import ProvenanceError
from .records import ProvenanceGraph

__all__ = ["graph_to_dot", "graph_to_svg"]

_MAX_PARAMS = 6
#: Parameters an astronomer reads first (the model, the region, the energy range, the
#: position), by pattern; the others are in the node's tooltip (hover in a browser).
_KEY_PATTERNS = (
    "model",
    "source",
    "target",
    "ra",
    "dec",
    "position",
    "region",
    "radius",
    "energy",
    "binsz",
    "width",
    "time",
)


def _short(text: Any) -> str:
    text = str(text)
    return text[:28] + "…" + text[-28:] if len(text) > 60 else text


def _quote(text: Any) -> str:
    return _short(text).replace("\\", "\\\\").replace('"', '\\"')


def _label(title: str, rows: list[tuple[str, Any]]) -> str:
    lines = [f"<B>{_html(title)}</B>"] + [f"{_html(k)}: {_html(_short(v))}" for k, v in rows]
    return "<" + "<BR/>".join(lines) + ">"


def _importance(name: str) -> int:
    words = name.lower().split(" ", 1)[-1].replace(".", "_").split("_")
    for rank, pattern in enumerate(_KEY_PATTERNS):
        if pattern in words or any(w.startswith(pattern) for w in words):
            return rank
    return len(_KEY_PATTERNS)


def _tooltip(rows: list[tuple[str, Any]]) -> str:
    """DOT text of a tooltip: one line per row (``\\n`` is DOT's line break)."""
    return "\\n".join(_quote_long(f"{k}: {v}") for k, v in rows)


def _quote_long(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _html(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def graph_to_dot(graph: ProvenanceGraph, *, agents: bool = True) -> str:
    """The graphviz DOT text of *graph*."""
    from ._values import display_value

    ids: dict[str, str] = {}

    def node(key: str) -> str:
        return ids.setdefault(key, f"n{len(ids)}")

    out = ["digraph provenance {", '  rankdir="BT";', '  node [fontname="Helvetica", fontsize=10];']
    for ent in graph.entities.values():
        rows = [("id", ent.id)]
        rows += [
            (k, v)
            for k in ("location", "data_level", "product_type", "obs_id")
            if (v := getattr(ent, k)) is not None
        ]
        if ent.sha256:
            rows.append(("sha256", ent.sha256[:16] + "…"))
        title = Path(ent.location).name if ent.location else ent.label or ent.kind
        out.append(
            f'  {node(ent.id)} [shape=ellipse, style=filled, fillcolor="#FFFC87", color="#808080", '
            f"label={_label(title, rows)}];"
        )
    for act in graph.activities.values():
        rows = [("version", act.version or "-"), ("status", act.status)]
        from .store import _flatten

        params = [(f"param {k}", display_value(v)) for k, v in act.parameters.items()]
        params += [(f"config {k}", display_value(v)) for k, v in _flatten(act.config).items()]
        # The parameters that matter first; every one of them on demand (tooltip).
        ranked = sorted(params, key=lambda kv: _importance(kv[0]))
        rows += ranked[:_MAX_PARAMS]
        if len(ranked) > _MAX_PARAMS:
            rows.append(("…", f"{len(ranked) - _MAX_PARAMS} more (hover to see all)"))
        tooltip = _tooltip([("id", act.id), ("start", act.start_time), *params])
        color = "#9FB1FC" if act.status == "completed" else "#FF9F9F"
        out.append(
            f'  {node(act.id)} [shape=box, style=filled, fillcolor="{color}", color="#0000FF", '
            f'tooltip="{tooltip}", label={_label(act.name, rows)}];'
        )
        for rel in act.used:
            if rel.entity_id in graph.entities:
                out.append(
                    f'  {node(act.id)} -> {node(rel.entity_id)} [label="used\\n{_quote(rel.role)}", fontsize=8];'
                )
        for rel in act.generated:
            if rel.entity_id in graph.entities:
                out.append(
                    f'  {node(rel.entity_id)} -> {node(act.id)} [label="wasGeneratedBy\\n{_quote(rel.role)}", '
                    "fontsize=8, color=darkgreen];"
                )
        for informant in act.informed_by:
            if informant in graph.activities:
                out.append(
                    f'  {node(act.id)} -> {node(informant)} [label="wasInformedBy", fontsize=8, style=dashed];'
                )
        if agents:
            for agent in act.agents:
                if agent.kind == "software" and agent.name not in ("ctanb", "gammapy"):
                    continue  # keep the picture readable; the full list is in the text formats
                if agent.id not in ids:
                    text = (
                        f"{agent.name} {agent.version}".strip()
                        if agent.kind == "software"
                        else agent.name
                    )
                    out.append(
                        f'  {node(agent.id)} [shape=house, style=filled, fillcolor="#FED37F", '
                        f'label="{_quote(agent.kind)}: {_quote(text)}"];'
                    )
                out.append(
                    f'  {node(act.id)} -> {node(agent.id)} [label="wasAssociatedWith", fontsize=8, color="#FDB266"];'
                )
    out.append("}")
    return "\n".join(out)


def graph_to_svg(
    graph: ProvenanceGraph, path: str | Path | None = None, *, agents: bool = True
) -> str:
    """Render *graph* to SVG with graphviz ``dot``; write it to *path* when given.

    Parameters
    ----------
    graph : ProvenanceGraph
        The provenance to draw.
    path : str or Path, optional
        Also write the picture to this file.
    agents : bool
        Draw the agents (user, host, software) too.

    Returns
    -------
    str
        The SVG text.

    Raises
    ------
    ProvenanceError
        The ``dot`` program is missing (install the Debian package ``graphviz``)
        or failed.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise ProvenanceError(
            "graphviz 'dot' not found on PATH: install graphviz (apt-get install graphviz)"
        )
    result = subprocess.run(
        [dot, "-Tsvg"],
        input=graph_to_dot(graph, agents=agents).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise ProvenanceError(
            f"graphviz dot failed: {result.stderr.decode(errors='replace').strip()}"
        )
    svg = result.stdout.decode()
    if path is not None:
        Path(path).write_text(svg)
    return svg
