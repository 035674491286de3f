"""Spectra: on/off extraction, model fit and flux points, with provenance.

Two recorded activities, so that a failed fit keeps the reduced datasets and
their provenance::

    DL3 event files --spectrum-datasets--> DL4 SpectrumDatasetOnOff (one FITS per run)
    DL4 datasets    --spectrum-fit-------> fitted models (YAML) + DL5 flux points (GADF SED)

Example
-------
The lines marked to skip are not run by the doctests (``hess_dir`` is the reader's
copy of the release, and the fit is ``tests/test_analysis_spectrum.py``'s):

>>> from ctanb.analysis import SpectrumConfig, SpectrumStep
>>> from ctanb.analysis.inputs import inputs_from_datastore
>>> inputs = inputs_from_datastore(hess_dir, [23523, 23526, 23559, 23592])  # doctest: +SKIP
>>> step = SpectrumStep(SpectrumConfig(ra_deg=83.633, dec_deg=22.014, model="log-parabola"))
>>> result = step.run(inputs, out="crab/")                                   # doctest: +SKIP
>>> result.plot()                                                            # doctest: +SKIP

The steps only configure and call gammapy (makers, :class:`~gammapy.modeling.Fit`,
:class:`~gammapy.estimators.FluxPointsEstimator`); the same analysis written in
plain gammapy gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import AnalysisError
from ..provenance import current_activity, recorded
from ._base import DL3Input, Step, require_inputs
from .spectrum_config import SpectrumConfig, _flux_point_edges, spectral_model
from .spectrum_data import (
    describe_dl3,
    honoured_edges,
    make_exclusion,
    read_exclusion,
    read_observations,
    reduce_on_off,
    remember_obscore,
)
from .spectrum_results import SpectrumResult

if TYPE_CHECKING:
    from gammapy.datasets import Datasets

__all__ = ["SpectrumConfig", "SpectrumResult", "SpectrumStep", "joint_fit", "spectral_model"]

_VERSION = "1.0"


def _sibling_files(pha: Path) -> list[Path]:
    """The background, ARF and RMF files gammapy writes beside an OGIP PHA file."""
    return [pha.with_name(f"{pha.stem}_{part}.fits") for part in ("bkg", "arf", "rmf")]


class SpectrumStep(Step):
    """Extract on/off spectra, fit a spectral model and estimate flux points (gammapy style).

    Parameters
    ----------
    config : SpectrumConfig or mapping
        The configuration (a mapping is validated strictly).
    """

    config_class = SpectrumConfig
    config_source = "spectrum configuration"

    def run(self, inputs: Any, out: str | Path) -> SpectrumResult:
        """Reduce, fit and estimate flux points; products go to folder *out*.

        Parameters
        ----------
        inputs : DL3Input list, archive results, DataStore or event paths
            The observations (see :func:`ctanb.analysis.inputs.as_inputs`).
        out : path
            Output folder (created).

        Returns
        -------
        SpectrumResult
            The fitted model, flux points and the product files.

        Raises
        ------
        AnalysisError
            No observation, missing IRFs, on region outside the field of view,
            or a fit that does not converge (the datasets are kept on disk).
        """
        observations = _as_inputs(inputs)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        remember_obscore(observations)
        events = [str(item.events) for item in observations]
        irfs = [str(item.irf or item.events) for item in observations]
        if all(item.irf is None for item in observations):
            irfs = []
        suffix = "pha_obs" if self.config.dataset_format == "ogip" else "spectrum_obs"
        dataset_files = [str(out / f"{suffix}{item.obs_id}.fits") for item in observations]
        masks = make_exclusion(self.config, out)  # recorded; kept if the reduction fails
        datasets = self.make_datasets(events, irfs, dataset_files, exclusion_files=masks)
        del datasets  # the fit reads them back from the files, as a redo would
        result = self.fit(dataset_files, out)
        result.inputs = observations
        if masks:
            result.products["exclusion_mask"] = Path(masks[0])
        return result

    def fit(self, dataset_files: Sequence[str | Path], out: str | Path) -> SpectrumResult:
        """Fit the model and estimate flux points from DL4 dataset files (one activity).

        Parameters
        ----------
        dataset_files : sequence of str or Path
            The spectrum dataset files (what :meth:`make_datasets` wrote).
        out : str or Path
            Output folder (created) for the fitted models and the flux points.

        Returns
        -------
        SpectrumResult
            The fitted model, flux points and product files.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = [str(f) for f in dataset_files]
        models_file = str(out / f"{self.config.source}_{self.config.model}_model.yaml")
        points_file = str(out / f"{self.config.source}_flux_points.fits")
        outcome = self.fit_datasets(files, models_file, points_file)
        products = {f"dataset_{Path(f).stem}": Path(f) for f in files}
        products.update(models=Path(models_file), flux_points=Path(points_file))
        from .sed import covariance_file

        if covariance_file(models_file).is_file():
            products["covariance"] = covariance_file(models_file)
        for telescope in list(outcome["flux_points_by_telescope"])[1:]:
            path = Path(points_file)
            products[f"flux_points_{telescope}"] = path.with_name(
                f"{path.stem}_{telescope}{path.suffix}"
            )
        return SpectrumResult(
            products=products,
            config=self.config,
            datasets=outcome["datasets"],
            models=outcome["models"],
            fit_result=outcome["fit_result"],
            flux_points=outcome["flux_points"],
            flux_points_by_telescope=outcome["flux_points_by_telescope"],
            fit_ranges=outcome["fit_ranges"],
            dataset_files=[Path(f) for f in files],
        )

    @recorded(
        name="spectrum-datasets",
        version=_VERSION,
        inputs={"event_files": describe_dl3, "irf_files": None, "exclusion_files": None},
        outputs={"dataset_files": "spectrum"},
        data_level="DL4",
        per_input=["dataset_files"],
    )
    def make_datasets(
        self,
        event_files: list[str],
        irf_files: list[str],
        dataset_files: list[str],
        exclusion_files: list[str] | None = None,
    ) -> Datasets:
        """On/off spectrum datasets of DL3 files, one file per observation (DL4); off
        regions avoid the excluded pixels of the mask in ``exclusion_files`` (0 or 1).

        Parameters
        ----------
        event_files : list of str
            The DL3 event files, one per observation.
        irf_files : list of str
            Their IRF files (empty when the IRFs are in the event files).
        dataset_files : list of str
            Where each observation's dataset is written (one per event file).
        exclusion_files : list of str, optional
            Zero or one exclusion mask file.

        Returns
        -------
        gammapy.datasets.Datasets
            The on/off datasets.

        Raises
        ------
        AnalysisError
            Not one dataset file per event file.
        """
        if len(dataset_files) != len(event_files):
            raise AnalysisError("give one dataset file per event file")
        datasets = reduce_on_off(
            self.config,
            read_observations(event_files, irf_files),
            read_exclusion(exclusion_files or []),
        )
        act = current_activity()
        for index, (dataset, path) in enumerate(zip(datasets, dataset_files, strict=True)):
            dataset.write(path, format=self.config.dataset_format, overwrite=True)
            if self.config.dataset_format == "ogip" and act is not None:
                for sibling in _sibling_files(Path(path)):  # written by gammapy beside the PHA
                    act.generated(
                        sibling,
                        role="ogip",
                        data_level="DL4",
                        product_type="spectrum",
                        derived_from=act.inputs_of_item(index, len(dataset_files)),
                    )
        return datasets

    @recorded(
        name="spectrum-fit",
        version=_VERSION,
        inputs=["dataset_files"],
        outputs={"models_file": "fit", "flux_points_file": "flux"},
        data_level="DL5",
    )
    def fit_datasets(
        self, dataset_files: list[str], models_file: str, flux_points_file: str
    ) -> dict[str, Any]:
        """Fit the configured model to DL4 datasets; write the models (YAML) and flux points.

        Parameters
        ----------
        dataset_files : list of str
            The spectrum dataset files.
        models_file : str
            Where the fitted models are written (YAML).
        flux_points_file : str
            Where the flux points are written.

        Returns
        -------
        dict
            ``datasets``, ``models``, ``fit_result``, ``flux_points``,
            ``flux_points_by_telescope`` and ``fit_ranges``.

        Raises
        ------
        AnalysisError
            No dataset, an unreadable dataset file, or a fit that does not converge.
        """
        import astropy.units as u
        from gammapy.datasets import Datasets, SpectrumDatasetOnOff
        from gammapy.estimators import FluxPointsEstimator
        from gammapy.modeling import Fit

        from .sed import covariance_file, write_flux_points

        if not dataset_files:
            raise AnalysisError("no spectrum dataset to fit")
        c = self.config
        datasets = Datasets()
        for path in dataset_files:
            name = Path(path).stem.removeprefix("spectrum_obs").removeprefix("pha_obs")
            try:
                datasets.append(SpectrumDatasetOnOff.read(path, name=name))
            except (OSError, KeyError, ValueError) as exc:
                raise AnalysisError(f"cannot read spectrum dataset {path}: {exc}") from None
        fit_ranges = {}  # dataset -> [lo, hi] energy edges of its fit range, as used
        lo, hi = c.fit_energy_min_tev, c.fit_energy_max_tev
        for dataset in datasets:
            axis = dataset.counts.geom.axes["energy"]
            used = axis.bounds
            if lo or hi:
                requested = [lo * u.TeV if lo else used[0], hi * u.TeV if hi else used[-1]]
                used = honoured_edges(axis, requested, f"fit range of dataset {dataset.name}")
                dataset.mask_fit = dataset.counts.geom.energy_mask(
                    energy_min=used[0], energy_max=used[-1]
                )
            fit_ranges[dataset.name] = u.Quantity([used[0], used[-1]]).to("TeV")
        groups = _telescope_groups(datasets)
        if c.energy_scale:  # joint-crab nuisance parameters (see energy_scale.py)
            from .energy_scale import energy_scale_models

            intrinsic = spectral_model(c).spectral_model
            datasets.models = energy_scale_models(intrinsic, c.source, groups, c.energy_scale)
        else:
            datasets.models = [spectral_model(c)]
        opts = {"migrad_opts": {"ncall": c.fit_max_calls}} if c.fit_max_calls else {}
        fit = Fit(optimize_opts=opts)
        fit_result = fit.run(datasets)
        if not fit_result.success:
            raise AnalysisError(
                f"the {c.model} fit of {c.source!r} to {len(datasets)} dataset(s) did not "
                f"converge: {fit_result.message} (datasets kept: {', '.join(dataset_files)}); "
                "try a narrower fit range (fit_energy_min_tev, fit_energy_max_tev), another "
                "model, or more calls (fit_max_calls)"
            )
        act = current_activity()
        # with the covariance (a file beside the YAML), so a butterfly rebuilt from the
        # products keeps the parameters' correlations
        datasets.models.write(models_file, overwrite=True, write_covariance=True)
        covariance = covariance_file(models_file)
        if act is not None and covariance.is_file():
            act.generated(covariance, role="covariance", data_level="DL5", product_type="fit")
        profiles = {"scan", "all"} & set(c.flux_points_optional)
        sed_type = "likelihood" if profiles else "dnde"  # likelihood: with the norm profiles
        # gammapy 2.1's allow_multiple_telescopes cannot build its output table, so a joint
        # fit gets flux points per telescope, each against the jointly fitted model (with
        # an energy scale: against that telescope's model, its fitted scale applied).
        by_telescope = {}
        for index, (telescope, members) in enumerate(groups.items()):
            path = Path(flux_points_file)
            if index:
                path = path.with_name(f"{path.stem}_{telescope}{path.suffix}")
            axis = members[0].counts.geom.axes["energy"]
            edges = honoured_edges(axis, _flux_point_edges(c), f"flux-point edges ({telescope})")
            source = f"{c.source}_{telescope}" if c.energy_scale else c.source
            estimator = FluxPointsEstimator(
                energy_edges=edges,
                source=source,
                selection_optional=list(c.flux_points_optional),
                norm={
                    "scan_min": c.scan_min,
                    "scan_max": c.scan_max,
                    "scan_n_values": c.scan_n_values,
                },
                n_jobs=1,
            )
            points = estimator.run(Datasets(members))
            ranges = u.Quantity([fit_ranges[member.name] for member in members]).value
            header = {
                "FIT_EMIN": (float(ranges[:, 0].min()), "[TeV] fit range used, lowest edge"),
                "FIT_EMAX": (float(ranges[:, 1].max()), "[TeV] fit range used, highest edge"),
            }
            header["MODELNAM"] = (source, "name of the reference model in MODEL")
            write_flux_points(
                points, path, sed_type=sed_type, model_file=Path(models_file), header=header
            )
            if index and act is not None:
                act.generated(path, role=telescope, data_level="DL5", product_type="flux")
            by_telescope[telescope] = points
        return {
            "datasets": datasets,
            "models": datasets.models,
            "fit_result": fit_result,
            "flux_points": next(iter(by_telescope.values())),
            "flux_points_by_telescope": by_telescope,
            "fit_ranges": fit_ranges,
        }


def _telescope_groups(datasets: Any) -> dict[str, list[Any]]:
    """Datasets grouped by the TELESCOP of their metadata, in order of appearance."""
    groups: dict[str, list[Any]] = {}
    for dataset in datasets:
        meta = dataset.meta_table
        name = "unknown"
        if meta is not None and "TELESCOP" in meta.colnames:
            name = str(meta["TELESCOP"][0]).strip() or "unknown"
        groups.setdefault(name.replace(" ", "_").lower(), []).append(dataset)
    return groups


def _as_inputs(inputs: Any) -> list[DL3Input]:
    from .inputs import as_inputs

    if isinstance(inputs, list | tuple) and not inputs:
        return require_inputs([])
    return require_inputs(as_inputs(inputs))


def joint_fit(
    results: Sequence[SpectrumResult],
    out: str | Path,
    config: SpectrumConfig | None = None,
) -> SpectrumResult:
    """Fit one model to the datasets of several spectrum results (e.g. H.E.S.S. + MAGIC).

    Parameters
    ----------
    results : sequence of SpectrumResult
        Results of :class:`SpectrumStep` runs, one per instrument.
    out : path
        Output folder of the joint models and flux points.
    config : SpectrumConfig, optional
        Model and flux-point settings; default the first result's configuration.
        Flux points are estimated per telescope against the joint model
        (``<source>_flux_points.fits`` for the first, ``..._<telescope>.fits``
        for the others). With ``energy_scale`` each telescope gets its own sky
        model ``<source>_<telescope>`` (the shared spectrum through its energy
        scale ``z``); ``result.model`` is then the intrinsic spectrum.

    Returns
    -------
    SpectrumResult
        The joint fit, its flux points and products.

    Raises
    ------
    AnalysisError
        No spectrum result given, or no configuration to use.
    """
    results = list(results)
    if not results:
        raise AnalysisError("joint fit: give at least one spectrum result")
    base = config or results[0].config
    if base is None:
        raise AnalysisError("joint fit: give a SpectrumConfig")
    joint = base
    files = [f for result in results for f in result.dataset_files]
    combined = SpectrumStep(joint).fit(files, out)
    combined.inputs = [item for result in results for item in result.inputs]
    return combined
