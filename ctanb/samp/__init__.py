"""SAMP: exchange tables, images and positions with TOPCAT, Aladin and other VO tools.

Not run by the doctests (it talks to TOPCAT: ``tests/test_samp_topcat.py`` does):

>>> from ctanb.samp import SampLink
>>> with SampLink.connect() as link:              # doctest: +SKIP
...     delivery = link.send_table(results, to="topcat")
...     print(delivery.summary())                 # topcat: samp.ok
...     link.on_selection(lambda sel: print(sel.rows))

A hosted kernel uses ``SampLink.bridge()`` and displays ``link.widget``: the user's
browser registers with the desktop SAMP hub through the SAMP Web Profile.
"""

from __future__ import annotations

from ._messages import Delivery, SampResponse, table_to_votable_bytes
from .link import SampLink
from .selection import Selection, SelectionModel
from .serve import LoopbackDataServer, SpoolPublisher

__all__ = [
    "Delivery",
    "LoopbackDataServer",
    "SampLink",
    "SampResponse",
    "Selection",
    "SelectionModel",
    "SpoolPublisher",
    "table_to_votable_bytes",
]
