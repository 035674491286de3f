"""``ctanb run CONFIG.yaml --out DIR``: a whole analysis from one YAML file."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["run"]


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder."
)
@click.option("--archive", "archive_url", help="Archive TAP URL (overrides the configuration).")
@click.option(
    "--dask",
    "workers",
    type=int,
    default=None,
    help="Reduce on a local Dask cluster of this many workers (overrides the configuration).",
)
@click.option("--scheduler", help="Reduce on the Dask scheduler at this address.")
@click.option(
    "--serial", is_flag=True, help="Reduce in this process (overrides the configuration)."
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def run(
    config: str,
    out_dir: str,
    archive_url: str | None,
    workers: int | None,
    scheduler: str | None,
    serial: bool,
    progress: bool,
) -> None:
    """Run the analysis of CONFIG (observations, maps, spectrum, light curve) into --out.

    Every product is written with its provenance (``ctanb prov show PRODUCT``).
    Example configurations: ``python -c "import ctanb.analysis as a; print(a.EXAMPLES)"``.
    """
    from .reduce import ParallelConfig
    from .workflow import Workflow

    workflow = Workflow.read(_example_or_path(config))
    setting = None
    if serial:
        setting = ParallelConfig(backend="serial", progress=progress)
    elif scheduler:
        setting = ParallelConfig(backend="dask", scheduler=scheduler, progress=progress)
    elif workers:
        setting = ParallelConfig(backend="dask", n_workers=workers, progress=progress)
    elif workflow.config.parallel is not None:
        setting = workflow.config.parallel.model_copy(update={"progress": progress})
    result = workflow.run(out_dir, archive_url=archive_url, parallel=setting, progress=progress)
    click.echo(
        f"{workflow.config.name}: {len(result.observations)} observation(s), "
        f"{len(result.products)} product(s) in {out_dir}"
    )
    for name, path in result.products.items():
        click.echo(f"  {name}: {path}")


def _example_or_path(config: str) -> Path:
    """CONFIG as given, or the packaged example of that name (``msh1552_map``)."""
    path = Path(config)
    if path.is_file():
        return path
    from . import examples

    packaged = examples.path(config)
    return packaged if packaged is not None else path
