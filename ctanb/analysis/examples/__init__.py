"""Example analysis configurations (``ctanb run <name> --out DIR``).

- ``msh1552_map``: H.E.S.S. DR1 maps of MSH 15-52 (FoV background), from the archive;
- ``msh1552_3d``: H.E.S.S. DR1 3D likelihood fit of MSH 15-52 (Gaussian), TS map;
- ``gc_3d_cta1dc``: CTA 1DC Galactic-centre 3D fit of two HGPS sources, TS map;
- ``gc_ring_cta1dc``: CTA 1DC Galactic centre, ring background on the stacked dataset with
  an HGPS exclusion mask;
- ``cta1dc_gps_map``: CTA 1DC Galactic-plane runs, ring background, from the archive;
- ``crab_spectrum_hess``: H.E.S.S. Crab spectrum (reflected regions, log-parabola);
- ``magic_pointlike_spectrum``: MAGIC Crab spectrum with point-like IRFs (RAD_MAX);
- ``pks2155_lightcurve``: H.E.S.S. PKS 2155-304 light curve.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES", "path"]

_HERE = Path(__file__).resolve().parent

#: Name -> packaged YAML file.
EXAMPLES: dict[str, Path] = {p.stem: p for p in sorted(_HERE.glob("*.yaml"))}


def path(name: str) -> Path | None:
    """The packaged example *name*.

    Parameters
    ----------
    name : str
        The example's name, with or without ``.yaml``.

    Returns
    -------
    Path or None
        Its YAML file; None when there is no such example.
    """
    return EXAMPLES.get(Path(name).name.removesuffix(".yaml"))
