"""The archive client: search an ObsCore archive and load the data into gammapy.

>>> import ctanb
>>> archive = ctanb.connect()                     # CTANB_TAP_URL or the embedded archive
>>> crab = archive.search(target="Crab", radius=2.5, collection="HESS-DL3-DR1")
>>> print(archive.adql(target="Crab"))            # the query, not run
SELECT * FROM ivoa.obscore
WHERE CONTAINS(POINT('ICRS', 83.63308, 22.0145), s_region) = 1
...
>>> observations = archive.observations(crab)     # events + IRFs, via DataLink
>>> len(observations) == len(crab)
True

Layers (pyvo-like): :class:`Archive` (service) -> :class:`Criteria` (what to look
for) -> :class:`Results` (astropy Table with the VOTable metadata) of ``Record``.
"""

from __future__ import annotations

from .archive import Archive, connect
from .criteria import Criteria
from .results import Results

__all__ = ["Archive", "Criteria", "Results", "connect"]
