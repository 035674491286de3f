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
    type=click.IntRange(min=1),
    default=None,
    help="Reduce on a local Dask cluster of this many workers, 1 or more "
    "(overrides the configuration).",
)
@click.option("--scheduler", help="Reduce on the Dask scheduler at this address.")
@click.option(
    "--serial", is_flag=True, help="Reduce in this process (overrides the configuration)."
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option(
    "--replace",
    is_flag=True,
    help="Overwrite --out even when it holds the products of another configuration.",
)
def run(
    config: str,
    out_dir: str,
    archive_url: str | None,
    workers: int | None,
    scheduler: str | None,
    serial: bool,
    progress: bool,
    replace: bool = False,
) -> None:
    """Run the analysis of CONFIG (observations, maps, spectrum, light curve) into --out.

    CONFIG is a YAML file, or the name of a packaged example (crab_spectrum_hess,
    msh1552_map, pks2155_lightcurve, ...: ``ctanb.analysis.EXAMPLES``). Every product
    is written with its provenance (``ctanb prov show PRODUCT``). The file format is
    described in the user guide ("ctanb run configuration").

    Examples: ``ctanb run msh1552_map --out products/``;
    ``ctanb run my_analysis.yaml --out products/ --dask 2``
    """
    from .reduce import ParallelConfig
    from .workflow import STEPS, Workflow

    workflow = Workflow.read(_example_or_path(config))
    if not any(getattr(workflow.config, section, None) is not None for section in STEPS):
        raise click.ClickException(
            f"{config} configures no analysis step, so there is nothing to run: add a "
            f"section {', '.join(STEPS)} (see the `ctanb run` configuration page of the docs)"
        )
    setting = None
    if serial:
        setting = ParallelConfig(backend="serial", progress=progress)
    elif scheduler:
        setting = ParallelConfig(backend="dask", scheduler=scheduler, progress=progress)
    elif workers:
        setting = ParallelConfig(backend="dask", n_workers=workers, progress=progress)
    elif workflow.config.parallel is not None:
        setting = workflow.config.parallel.model_copy(update={"progress": progress})
    if not replace:
        _refuse_other_products(Path(out_dir), workflow.config.to_yaml())
    result = workflow.run(out_dir, archive_url=archive_url, parallel=setting, progress=progress)
    click.echo(
        f"{workflow.config.name}: {len(result.observations)} observation(s), "
        f"{len(result.products)} product(s) in {out_dir}"
    )
    for name, path in result.products.items():
        click.echo(f"  {name}: {path}")


def _refuse_other_products(out: Path, config_yaml: str) -> None:
    """Stop before a run overwrites the products another configuration wrote into *out*."""
    import yaml

    earlier = out / "analysis.yaml"  # written by Workflow.run next to its products
    if not earlier.is_file():
        return
    try:
        same = yaml.safe_load(earlier.read_text()) == yaml.safe_load(config_yaml)
    except (OSError, yaml.YAMLError):
        same = False
    if not same:
        raise click.ClickException(
            f"{out} already holds the products of another analysis configuration "
            f"({earlier}); choose a new --out folder, or add --replace to overwrite them"
        )


def _example_or_path(config: str) -> Path:
    """CONFIG as given, or the packaged example of that name (``msh1552_map``)."""
    path = Path(config)
    if path.is_file():
        return path
    from . import examples

    packaged = examples.path(config)
    return packaged if packaged is not None else path
