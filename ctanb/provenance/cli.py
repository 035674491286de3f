"""``ctanb prov``: show, graph, query, verify and redo provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .._errors import ProvenanceError

__all__ = ["prov"]

_FORMATS = ["text", "json", "xml", "provn", "turtle"]


def _store(url: str | None) -> Any:
    """The store a command names (``--store``), else the default one. A named store must
    exist: a mistyped path is an error, not a new empty store."""
    from .store import ProvenanceStore, default_store

    if not url:
        return default_store()
    if "://" in url:
        if not url.startswith(("sqlite:", "postgresql")):
            raise ProvenanceError(
                f"--store takes a SQLite file or a sqlite:/// or postgresql:// URL, not {url!r}"
            )
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
            raise ProvenanceError(f"no provenance store at {url}")
    elif not Path(url).is_file():
        raise ProvenanceError(f"no provenance store at {url} (no such file)")
    return ProvenanceStore(url)


def _graph_of_product(product: str, store_url: str | None) -> Any:
    """The product's embedded provenance, or the store's lineage of it when it carries none."""
    from ._hashing import sha256_file
    from .fits import has_provenance, read_provenance

    path = Path(product)
    if not path.is_file():
        raise ProvenanceError(f"product {path} does not exist")
    if has_provenance(path):
        return read_provenance(path)
    store = _store(store_url)
    known = store.find_entities(sha256=sha256_file(path)) or store.find_entities(
        location=str(path.resolve())
    )
    if not known:
        raise ProvenanceError(
            f"{path} carries no provenance (not a FITS product of ctanb) and the provenance "
            "store does not know it"
        )
    return store.lineage(known[0].id, depth=None, direction="BACK")


def _describe(graph: Any) -> str:
    from ._values import display_value

    lines = []
    order = sorted(graph.activities.values(), key=lambda a: a.start_time)
    for act in order:
        status = act.status
        if status == "running" and not any(r for r in act.generated):
            status = "in progress when this product was made"  # e.g. the `ctanb run` analysis
        lines.append(f"activity {act.name} {act.version}  [{status}]  {act.id}")
        lines.append(f"  time: {act.start_time} -> {act.end_time or '-'}")
        for key, value in act.parameters.items():
            lines.append(f"  parameter {key} = {display_value(value)}")
        if act.config:
            lines.append(f"  configuration: {json.dumps(act.config, sort_keys=True)}")
        for label, rels in (("used", act.used), ("generated", act.generated)):
            for rel in rels:
                ent = graph.entities.get(rel.entity_id)
                where = ent.location or ent.label if ent else rel.entity_id
                extra = []
                if ent is not None:
                    extra = [
                        f"{k}={v}"
                        for k in ("data_level", "obs_id", "product_type")
                        if (v := getattr(ent, k))
                    ]
                lines.append(f"  {label} [{rel.role}] {where} {' '.join(extra)}".rstrip())
        agents = ", ".join(f"{a.name} {a.version}".strip() for a in act.agents)
        lines.append(f"  agents: {agents}")
    return "\n".join(lines)


@click.group()
def prov() -> None:
    """Show, query, verify and redo the provenance of products."""


@prov.command(short_help="Print the provenance of PRODUCT.")
@click.argument("product")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="text", show_default=True)
@click.option("--model", type=click.Choice(["IVOA", "W3C"], case_sensitive=False), default="IVOA")
@click.option(
    "--store", "store_url", help="Store URL or path (used when the product carries no provenance)."
)
def show(product: str, fmt: str, model: str, store_url: str | None) -> None:
    """Print the provenance of PRODUCT (its own PROVENANCE HDU, else the store).

    Example: ``ctanb prov show products/spectrum/flux_points.fits --format provn``
    """
    graph = _graph_of_product(product, store_url)
    if not graph.activities and not graph.entities:
        raise ProvenanceError(f"the provenance record of {product} describes nothing")
    click.echo(_describe(graph) if fmt == "text" else graph.serialize(fmt, model=model))


@prov.command(short_help="Draw the provenance graph of PRODUCT.")
@click.argument("product")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="File to write: NAME.svg (picture) or NAME.dot (graphviz text).",
)
@click.option(
    "--store", "store_url", help="Store URL or path (used when the product carries no provenance)."
)
def graph(product: str, output: str, store_url: str | None) -> None:
    """Draw the provenance graph of PRODUCT as SVG (graphviz dot).

    Example: ``ctanb prov graph products/spectrum/flux_points.fits -o prov.svg``
    """
    target = Path(output)
    kind = target.suffix.lower()
    if kind not in (".svg", ".dot", ".gv"):
        raise ProvenanceError(
            f"cannot write {output}: the graph is drawn as SVG (-o NAME.svg) or written as "
            f"graphviz text (-o NAME.dot), not as {kind or 'a file without extension'}"
        )
    if not target.parent.is_dir():
        raise ProvenanceError(f"cannot write {output}: folder {target.parent} does not exist")
    drawn = _graph_of_product(product, store_url)
    if kind == ".svg":
        drawn.to_svg(output)
    else:
        from .graph import graph_to_dot

        target.write_text(graph_to_dot(drawn))
    click.echo(f"wrote {output}")


def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ProvenanceError(f"--param must be NAME=VALUE, not {text!r}")
    name, raw = text.split("=", 1)
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


@prov.command(short_help="Query the provenance store.")
@click.option("--name", help="Activity (ActivityDescription) name.")
@click.option("--version", "version_", help="Activity version (pipeline version).")
@click.option(
    "--param", "params", multiple=True, help="NAME=VALUE a parameter must have (repeatable)."
)
@click.option("--agent", help="Agent id or name: user, host, software or software-version.")
@click.option("--status", type=click.Choice(["running", "completed", "failed", "incomplete"]))
@click.option("--obs-id", help="Everything derived from this run (obs_id).")
@click.option("--did", help="Everything derived from this dataset (obs_publisher_did).")
@click.option("--products", is_flag=True, help="List the products of the matching activities.")
@click.option("--id", "ids", multiple=True, help="ProvSAP ID: lineage of this entity or activity.")
@click.option(
    "--depth", default="1", show_default=True, help="ProvSAP DEPTH: relations to follow, or ALL."
)
@click.option(
    "--direction", type=click.Choice(["BACK", "FORTH"], case_sensitive=False), default="BACK"
)
@click.option("--agents/--no-agents", default=True, help="ProvSAP AGENTS.")
@click.option("--model", type=click.Choice(["IVOA", "W3C"], case_sensitive=False), default="IVOA")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="text", show_default=True)
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1),
              help="At most this many activities or products (1 or more).")  # fmt: skip
@click.option(
    "--store", "store_url", help="Store URL or path (default: CTANB_PROV_URL or ~/.ctanb)."
)
def query(
    name: str | None,
    version_: str | None,
    params: tuple[str, ...],
    agent: str | None,
    status: str | None,
    obs_id: str | None,
    did: str | None,
    products: bool,
    ids: tuple[str, ...],
    depth: str,
    direction: str,
    agents: bool,
    model: str,
    fmt: str,
    limit: int,
    store_url: str | None,
) -> None:
    """Query the provenance store (activities, products, derived datasets, ProvSAP lineage).

    Examples: ``ctanb prov query --name spectrum --products``;
    ``ctanb prov query --obs-id 23523``; ``ctanb prov query --id ENTITY_ID --depth ALL``
    """
    depth = depth.strip()
    if depth.upper() != "ALL" and not depth.isdigit():
        raise click.BadParameter(
            f"give a number of relations (0, 1, 2, ...) or ALL, not {depth!r}", param_hint="--depth"
        )
    store = _store(store_url)
    if ids:
        if fmt == "text":
            lineage_depth = None if depth.upper() == "ALL" else int(depth)
            click.echo(_describe(store.lineage(ids, depth=lineage_depth, direction=direction)))
        else:
            click.echo(
                store.provsap(
                    list(ids),
                    DEPTH=depth,
                    DIRECTION=direction,
                    AGENTS=agents,
                    MODEL=model,
                    RESPONSEFORMAT=fmt,
                )
            )
        return
    if obs_id is not None or did is not None:
        _echo_entities(store.derived_from(obs_id=obs_id, publisher_did=did), fmt)
        return
    parameters = dict(_parse_param(p) for p in params)
    if products:
        _echo_entities(
            store.products(
                name=name, version=version_, agent=agent, parameters=parameters, limit=limit
            ),
            fmt,
        )
        return
    found = store.activities(
        name=name, version=version_, agent=agent, parameters=parameters, status=status, limit=limit
    )
    if fmt == "json":
        click.echo(json.dumps([a.to_dict() for a in found], indent=1))
    else:
        for act in found:
            click.echo(f"{act.id}\t{act.name}\t{act.version}\t{act.status}\t{act.start_time}")


def _echo_entities(entities: list[Any], fmt: str) -> None:
    if not entities and fmt != "json":
        click.echo("nothing found", err=True)
        return
    if fmt == "json":
        click.echo(json.dumps([e.to_dict() for e in entities], indent=1))
        return
    for ent in entities:
        click.echo(
            f"{ent.id}\t{ent.data_level or '-'}\t{ent.product_type or '-'}\t{ent.location or ent.label}"
        )


@prov.command(short_help="Check PRODUCT, its record and its inputs.")
@click.argument("product")
@click.option(
    "--store",
    "store_url",
    help="Provenance store to check the record against (default: CTANB_PROV_URL or ~/.ctanb).",
)
def verify(product: str, store_url: str | None) -> None:
    """Check PRODUCT: every header and data byte, its signed record, its inputs on disk.

    Example: ``ctanb prov verify products/maps/counts.fits``
    """
    from .verify import verify as run_verify

    report = run_verify(product, store=_store(store_url))
    click.echo(str(report))
    if not report.ok:
        raise ProvenanceError(
            f"verification of {product} failed: {len(report.problems)} problem(s)"
        )


@prov.command(short_help="Re-run the chain of PRODUCT and compare.")
@click.argument("product")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the new product.",
)
@click.option(
    "--archive",
    "archive_url",
    help="Archive to fetch missing inputs from, by publisher DID (default: CTANB_TAP_URL).",
)
def redo(product: str, out_dir: str, archive_url: str | None) -> None:
    """Re-run the recorded chain of PRODUCT from its DL3 inputs into --out and compare.

    PRODUCT is a file, or a published product's DID (with --archive) or URL.

    Example: ``ctanb prov redo products/spectrum/flux_points.fits --out redo/``
    """
    from .replay import redo as run_redo

    if product.startswith(("ivo://", "http://", "https://")):
        # A published product, by its DID or URL: fetched from the archive first (issue 14).
        from ..client.publish import fetch_published

        path, archive_url = fetch_published(product, out_dir, archive=archive_url)
        product = str(path)
    report = run_redo(product, out_dir, archive=archive_url)
    click.echo(str(report))
    if not report.ok:
        raise ProvenanceError(
            f"redo of {product} does not reproduce it (see the differences above)"
        )


@prov.command(short_help="Print your public signing key.")
def key() -> None:
    """Print your public signing key (give it to colleagues who verify your products)."""
    from .signing import public_key

    click.echo(public_key())


@prov.command(short_help="Trust products signed with PUBLIC_KEY.")
@click.argument("public_key")
@click.option("--name", default="", help="Whose key it is (shown when verifying).")
def trust(public_key: str, name: str) -> None:
    """Trust products signed with PUBLIC_KEY (64 hex digits, or a file holding them)."""
    from .signing import trust_key

    path = trust_key(public_key, name)
    click.echo(f"trusted: {path}")
