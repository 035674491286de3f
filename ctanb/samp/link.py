"""SampLink: send ctanb's tables, images and positions to TOPCAT/Aladin and listen back.

One public object for both situations:

* a kernel on the desktop registers with the SAMP hub itself (:meth:`SampLink.connect`,
  Standard Profile through :mod:`pyvo.samp`);
* a hosted kernel talks through the user's browser (:meth:`SampLink.bridge`, Web
  Profile, see :mod:`ctanb.samp.bridge`).

Every button of the notebook panels maps to one public method here.
"""

from __future__ import annotations

import io
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._errors import CtanbError
from ._messages import (
    MTYPE_COORD,
    MTYPE_HIGHLIGHT,
    MTYPE_IMAGE,
    MTYPE_SELECT,
    MTYPE_SPECTRUM,
    MTYPE_TABLE,
    STATUS_UNDELIVERED,
    Delivery,
    SampResponse,
    as_astropy_table,
    table_to_votable_bytes,
)
from .selection import Selection, SelectionModel

__all__ = ["SampLink"]

VOTABLE_TYPE = "application/x-votable+xml"
FITS_TYPE = "application/fits"

#: How long ``send_*`` waits for every answer by default (seconds).
DEFAULT_TIMEOUT = 30.0


class SampLink:
    """A ctanb client on a SAMP hub.

    Build it with :meth:`connect` (kernel on the desktop) or :meth:`bridge`
    (hosted kernel, through the browser). Use it as a context manager or call
    :meth:`close`.

    Parameters
    ----------
    transport : object
        The profile-specific part (:class:`~ctanb.samp._standard.StandardTransport`
        or :class:`~ctanb.samp.bridge.BridgeTransport`).
    publisher : object
        Where data is put for the applications to download (``publish(data, name,
        content_type) -> url``).
    timeout : float
        Default seconds to wait for answers.
    """

    def __init__(self, transport: Any, publisher: Any, *, timeout: float = DEFAULT_TIMEOUT):
        self.transport = transport
        self.publisher = publisher
        self.timeout = timeout
        self.selection_model = SelectionModel()
        self._pending: dict[str, tuple[Delivery, str]] = {}
        self._lock = threading.Lock()
        self._point_observers: list[Callable[[Any], None]] = []
        self._client_observers: list[Callable[[list[str]], None]] = []
        self._sent_tables: dict[int, tuple[Any, str, str]] = {}  # id(obj) -> (obj, tid, url)
        transport.set_callbacks(
            on_response=self._receive_response, on_samp_hub_event=self._samp_hub_event
        )
        transport.subscribe(MTYPE_SELECT, self._receive_select)
        transport.subscribe(MTYPE_HIGHLIGHT, self._receive_highlight)
        transport.subscribe(MTYPE_COORD, self._receive_point)

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        lockfile: str | Path | None = None,
        *,
        start_samp_hub: bool = True,
        name: str = "ctanb",
        serve: str = "file",
        timeout: float = DEFAULT_TIMEOUT,
        start_hub: bool | None = None,
    ) -> SampLink:
        """Register with the desktop SAMP hub (``SAMP_HUB`` or ``~/.samp``), starting one if needed.

        Parameters
        ----------
        lockfile : str or Path, optional
            The SAMP hub's lockfile, overriding ``SAMP_HUB``/``~/.samp``.
        start_samp_hub : bool
            Start an embedded SAMP hub when none runs (applications started later find it).
        name : str
            The ``samp.name`` other applications see.
        serve : {"file", "http"}
            How the applications get the data: ``file:`` URLs of a private temporary
            folder (same machine; the default) or a loopback HTTP server with
            random-token URLs.
        timeout : float
            Default seconds to wait for answers.
        start_hub : bool, optional
            Deprecated name of *start_samp_hub* ("hub" alone means JupyterHub in ctanb).

        Returns
        -------
        SampLink
            The registered link.

        Raises
        ------
        CtanbError
            When no SAMP hub runs and *start_samp_hub* is False, or registration fails.
        """
        from ._standard import StandardTransport
        from .serve import LocalFilePublisher, LoopbackDataServer

        publishers = {"file": LocalFilePublisher, "http": LoopbackDataServer}
        if serve not in publishers:
            raise CtanbError(f"serve={serve!r}: choose 'file' or 'http'")
        if start_hub is not None:
            warnings.warn("SampLink.connect(start_hub=...) is deprecated: use start_samp_hub=...",
                          DeprecationWarning, stacklevel=2)  # fmt: skip
            start_samp_hub = start_hub
        transport = StandardTransport(
            lockfile, start_samp_hub=start_samp_hub, metadata=_metadata(name)
        )
        return cls(transport, publishers[serve](), timeout=timeout)

    @classmethod
    def bridge(cls, *, name: str = "ctanb", timeout: float = DEFAULT_TIMEOUT) -> SampLink:
        """A link through the browser (hosted kernels); display ``link.widget`` to start it.

        Parameters
        ----------
        name : str
            The name other applications see.
        timeout : float
            Seconds a call waits for its answers.

        Returns
        -------
        SampLink
            The link (connected once its widget is shown).
        """
        from .bridge import BridgeTransport, SampBridge
        from .serve import SpoolPublisher

        widget = SampBridge(app_name=name)
        return cls(BridgeTransport(widget), SpoolPublisher(), timeout=timeout)

    @property
    def widget(self):
        """The browser-side widget of a bridged link (None for the Standard Profile)."""
        return getattr(self.transport, "widget", None)

    # --- the SAMP hub --------------------------------------------------------------------------
    @property
    def samp_hub(self):
        """The embedded SAMP hub ctanb started, or None when it joined a running one."""
        return getattr(self.transport, "samp_hub", None)

    @property
    def hub(self):
        """Deprecated name of :attr:`samp_hub` ("hub" alone means JupyterHub in ctanb)."""
        warnings.warn("SampLink.hub is deprecated: use SampLink.samp_hub",
                      DeprecationWarning, stacklevel=2)  # fmt: skip
        return self.samp_hub

    def clients(self) -> dict[str, str]:
        """The other applications on the SAMP hub.

        Returns
        -------
        dict of str to str
            ``{client_id: samp.name}``.
        """
        return self.transport.clients()

    def client_names(self) -> list[str]:
        """Names of the other applications on the SAMP hub, sorted (for a chooser).

        Returns
        -------
        list of str
            The names.
        """
        return sorted(set(self.clients().values()), key=str.lower)

    def on_clients(self, callback: Callable[[list[str]], None]) -> Callable[[], None]:
        """Call ``callback(client_names)`` when applications join or leave the SAMP hub.

        Parameters
        ----------
        callback : callable
            Called with the sorted names.

        Returns
        -------
        callable
            Call it to stop being called.
        """
        self._client_observers.append(callback)
        return lambda: self._client_observers.remove(callback)

    def _samp_hub_event(self) -> None:
        if not self._client_observers:
            return
        names = self.client_names()
        for callback in list(self._client_observers):
            callback(names)

    def _recipients(self, mtype: str, to: str | Iterable[str] | None) -> dict[str, str]:
        accepting = self.transport.subscribed(mtype)
        clients = self.clients()
        if to is None:
            return {c: clients.get(c, c) for c in accepting if c in clients}
        wanted = [to] if isinstance(to, str) else list(to)
        out = {}
        for want in wanted:
            ids = [c for c, n in clients.items() if want in (c, n) or want.lower() == n.lower()]
            if not ids:
                known = ", ".join(sorted(set(clients.values()))) or "none"
                raise CtanbError(f"no application named {want!r} on the SAMP hub (there: {known})")
            taking = [c for c in ids if c in accepting]
            if not taking:
                raise CtanbError(f"{want} does not accept {mtype} messages")
            out.update({c: clients[c] for c in taking})
        return out

    # --- sending --------------------------------------------------------------------------------
    def send(
        self,
        mtype: str,
        params: dict[str, Any],
        to: str | Iterable[str] | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
        url: str = "",
        table_id: str = "",
    ) -> Delivery:
        """Send any SAMP message as a call and collect one answer per recipient.

        Parameters
        ----------
        mtype : str
            The MType, e.g. ``"table.load.votable"``.
        params : dict
            ``samp.params`` (strings, lists and maps of strings only).
        to : str or list of str, optional
            Application names (``"topcat"``) or ids; default: all that accept *mtype*.
        wait : bool
            Block until every answer arrived or *timeout* passed (Standard Profile;
            a bridged link answers asynchronously whatever this says).
        timeout : float, optional
            Seconds to wait (default: the link's timeout).
        url, table_id : str
            The document and table the message is about (kept with the delivery).

        Returns
        -------
        Delivery
            One answer per recipient.
        """
        recipients = self._recipients(mtype, to)
        delivery = Delivery(mtype, recipients, url=url, table_id=table_id)
        message = {"samp.mtype": mtype, "samp.params": params}
        for client_id, client_name in recipients.items():
            tag = "ctanb-" + uuid.uuid4().hex
            with self._lock:
                self._pending[tag] = (delivery, client_id)
            try:
                self.transport.call(client_id, tag, message)
            except Exception as exc:
                with self._lock:
                    self._pending.pop(tag, None)
                delivery.add_response(
                    SampResponse(client_id, client_name, STATUS_UNDELIVERED, error=str(exc))
                )
        timeout = self.timeout if timeout is None else timeout
        if getattr(self.transport, "synchronous", True) and wait:
            if not delivery.wait(timeout).done:
                delivery.expire(f"no answer within {timeout:g} s")
        else:
            timer = threading.Timer(timeout, delivery.expire, (f"no answer within {timeout:g} s",))
            timer.daemon = True
            timer.start()
            delivery.on_done(lambda _: timer.cancel())
        return delivery

    def _receive_response(self, responder_id: str, msg_tag: str, response: dict) -> None:
        with self._lock:
            pending = self._pending.pop(msg_tag, None)
        if pending is None:
            return
        delivery, client_id = pending
        name = delivery.recipients.get(client_id, responder_id)
        delivery.add_response(SampResponse.from_samp(client_id, name, response))

    def send_table(
        self,
        table: Any,
        to: str | Iterable[str] | None = None,
        *,
        name: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> Delivery:
        """Send a table (``table.load.votable``) with its units, UCDs and descriptions.

        Parameters
        ----------
        table : astropy.table.Table or ctanb.client.Results
            The rows; row indices in later selections refer to this order.
        to : str or list of str, optional
            Application names; default: every application that loads tables.
        name : str, optional
            The name shown in the application (default: the table's ``name`` meta or
            ``"ctanb"``).
        wait : bool
            Block until every answer arrived or *timeout* passed.
        timeout : float, optional
            Seconds to wait (default: the link's timeout).

        Returns
        -------
        Delivery
            With ``table_id`` (fresh each time: TOPCAT refuses a reused id) and ``url``.
        """
        astropy_table = as_astropy_table(table)
        name = name or str(astropy_table.meta.get("name") or "ctanb")
        data = table_to_votable_bytes(astropy_table, name=name)
        url = self.publisher.publish(data, f"{name}.vot", VOTABLE_TYPE)
        table_id = f"ctanb-{uuid.uuid4().hex[:12]}"
        self.selection_model.register_table(table_id, url)
        self._sent_tables[id(table)] = (table, table_id, url)
        params = {"url": url, "table-id": table_id, "name": name}
        return self.send(
            MTYPE_TABLE, params, to, wait=wait, timeout=timeout, url=url, table_id=table_id
        )

    def table_id(self, table: Any) -> str | None:
        """The table-id *table* was last sent with.

        Parameters
        ----------
        table : object
            What was given to :meth:`send_table`.

        Returns
        -------
        str or None
            None when it was not sent.
        """
        entry = self._sent_tables.get(id(table))
        return entry[1] if entry and entry[0] is table else None

    def _table_ref(self, table: Any) -> tuple[str, str]:
        if isinstance(table, str):
            key = self.selection_model.key(table, table)
            return key, self.selection_model._urls.get(key, table)
        entry = self._sent_tables.get(id(table))
        if entry is None or entry[0] is not table:
            raise CtanbError("this table was not sent over SAMP yet: call send_table first")
        return entry[1], entry[2]

    def send_selection(
        self,
        table: Any,
        rows: Iterable[int],
        to: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> Delivery:
        """Select rows (``table.select.rowList``) of a table sent before.

        The local selection model is updated too.

        Parameters
        ----------
        table : object or str
            The object given to :meth:`send_table`, or its table-id.
        rows : iterable of int
            0-based row indices.
        to : str or list of str, optional
            Application names or ids; default: all that accept the message.
        **kwargs
            ``wait`` and ``timeout`` of :meth:`send`.

        Returns
        -------
        Delivery
            One answer per recipient.
        """
        table_id, url = self._table_ref(table)
        rows = [int(r) for r in rows]
        self.selection_model.set_rows(rows, table_id=table_id, source="ctanb")
        params = {"table-id": table_id, "url": url, "row-list": [str(r) for r in rows]}
        return self.send(MTYPE_SELECT, params, to, url=url, table_id=table_id, **kwargs)

    def send_highlight(
        self, table: Any, row: int, to: str | Iterable[str] | None = None, **kwargs: Any
    ) -> Delivery:
        """Highlight one row (``table.highlight.row``) of a table sent before.

        Parameters
        ----------
        table : object or str
            The object given to :meth:`send_table`, or its table-id.
        row : int
            0-based row index.
        to : str or list of str, optional
            Application names or ids; default: all that accept the message.
        **kwargs
            ``wait`` and ``timeout`` of :meth:`send`.

        Returns
        -------
        Delivery
            One answer per recipient.
        """
        table_id, url = self._table_ref(table)
        self.selection_model.set_highlight(int(row), table_id=table_id, source="ctanb")
        params = {"table-id": table_id, "url": url, "row": str(int(row))}
        return self.send(MTYPE_HIGHLIGHT, params, to, url=url, table_id=table_id, **kwargs)

    def point_at(self, position: Any, to: str | Iterable[str] | None = None, **kwargs) -> Delivery:
        """Point sky viewers at a position (``coord.pointAt.sky``, ICRS degrees).

        Parameters
        ----------
        position : SkyCoord or (float, float)
            The position, or ``(ra, dec)`` in degrees.
        to : str or list of str, optional
            Application names or ids; default: all that accept the message.
        **kwargs
            ``wait`` and ``timeout`` of :meth:`send`.

        Returns
        -------
        Delivery
            One answer per recipient.

        Raises
        ------
        CtanbError
            *position* is not a sky position.
        """
        from astropy.coordinates import SkyCoord

        if not isinstance(position, SkyCoord):
            try:
                ra, dec = position
                position = SkyCoord(float(ra), float(dec), unit="deg")
            except (TypeError, ValueError) as exc:
                raise CtanbError(f"not a sky position: {position!r} (give a SkyCoord)") from exc
        icrs = position.icrs
        params = {"ra": repr(float(icrs.ra.deg)), "dec": repr(float(icrs.dec.deg))}
        return self.send(MTYPE_COORD, params, to, **kwargs)

    def send_image(
        self, image: Any, to: str | Iterable[str] | None = None, *, name: str = "image", **kwargs
    ) -> Delivery:
        """Send a FITS image (``image.load.fits``).

        Parameters
        ----------
        image : path, HDUList, HDU, gammapy.maps.Map or bytes
            The image.
        to : str or list of str, optional
            Application names or ids; default: all that accept the message.
        name : str
            The name shown in the application.
        **kwargs
            ``wait`` and ``timeout`` of :meth:`send`.

        Returns
        -------
        Delivery
            One answer per recipient.
        """
        data = _fits_bytes(image, what="image")
        url = self.publisher.publish(data, f"{name}.fits", FITS_TYPE)
        image_id = f"ctanb-{uuid.uuid4().hex[:12]}"
        params = {"url": url, "name": name, "image-id": image_id}
        return self.send(MTYPE_IMAGE, params, to, url=url, **kwargs)

    def send_spectrum(
        self,
        spectrum: Any,
        to: str | Iterable[str] | None = None,
        *,
        name: str = "spectrum",
        target: str = "",
        did: str = "",
        **kw: Any,
    ) -> Delivery:
        """Send a spectrum (``spectrum.load.ssa-generic``).

        Flux points or an SED (a gammapy ``gadf-sed`` FITS product, its bytes or
        HDUList, or such a table) go as a VOTable with units, UCDs and Spectrum-DM
        utypes, and the message's ``meta`` carries the SSA fields (``Access.Format``,
        ``Target.Name``, ``Char.FluxAxis.Unit``, ...; see :mod:`ctanb.samp.spectrum`).
        Any other table goes as a VOTable, anything else as FITS.

        Parameters
        ----------
        spectrum : path, bytes, HDUList or astropy.table.Table
            What to send.
        to : str or list of str, optional
            Application names; default: every application that loads spectra.
        name, target, did : str, optional
            Title, target name and publisher DID of the spectrum.
        **kw
            ``wait`` and ``timeout`` of :meth:`send`.

        Returns
        -------
        Delivery
            One answer per recipient.
        """
        from .spectrum import spectrum_meta, spectrum_table, spectrum_votable

        try:
            table = spectrum_table(spectrum, name=name, target=target, did=did)
        except CtanbError:
            table = None
        if table is not None:
            url = self.publisher.publish(spectrum_votable(table), f"{name}.vot", VOTABLE_TYPE)
            meta = spectrum_meta(table, url=url, content_type=VOTABLE_TYPE)
            params = {"url": url, "name": name, "meta": meta}
            return self.send(MTYPE_SPECTRUM, params, to, url=url, **kw)
        try:
            data, content = table_to_votable_bytes(spectrum, name=name), VOTABLE_TYPE
            suffix = ".vot"
        except CtanbError:
            data, content, suffix = _fits_bytes(spectrum, what="spectrum"), FITS_TYPE, ".fits"
        url = self.publisher.publish(data, name + suffix, content)
        meta = {"Access.Format": content, "Target.Name": name}
        params = {"url": url, "name": name, "meta": meta}
        return self.send(MTYPE_SPECTRUM, params, to, url=url, **kw)

    # --- receiving ---------------------------------------------------------------------------------
    @property
    def selection(self) -> dict[str, tuple[int, ...]]:
        """``{table_id: selected rows}`` as last set by any application or by ctanb."""
        return self.selection_model.selection

    def on_selection(self, callback: Callable[[Selection], None]) -> Callable[[], None]:
        """Call ``callback(selection)`` when rows are selected or highlighted anywhere.

        Parameters
        ----------
        callback : callable
            Called with the :class:`Selection`.

        Returns
        -------
        callable
            Call it to stop being called.
        """
        return self.selection_model.on_change(callback)

    def on_point(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(skycoord)`` when an application sends ``coord.pointAt.sky``.

        Parameters
        ----------
        callback : callable
            Called with the position as a SkyCoord.

        Returns
        -------
        callable
            Call it to stop being called.
        """
        self._point_observers.append(callback)
        return lambda: self._point_observers.remove(callback)

    def _sender_name(self, sender_id: str) -> str:
        return self.transport.client_name(sender_id)

    def _receive_select(self, sender_id: str, params: dict) -> dict:
        rows = [int(r) for r in params.get("row-list", [])]
        self.selection_model.set_rows(
            rows,
            table_id=params.get("table-id"),
            url=params.get("url"),
            source=self._sender_name(sender_id),
        )
        return {}

    def _receive_highlight(self, sender_id: str, params: dict) -> dict:
        self.selection_model.set_highlight(
            int(params["row"]),
            table_id=params.get("table-id"),
            url=params.get("url"),
            source=self._sender_name(sender_id),
        )
        return {}

    def _receive_point(self, sender_id: str, params: dict) -> dict:
        from astropy.coordinates import SkyCoord

        position = SkyCoord(float(params["ra"]), float(params["dec"]), unit="deg", frame="icrs")
        for callback in list(self._point_observers):
            callback(position)
        return {}

    # --- lifetime ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Unregister from the SAMP hub and stop serving data."""
        try:
            self.transport.close()
        finally:
            self.publisher.close()

    def __enter__(self) -> SampLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SampLink {self.transport.kind}: {', '.join(self.client_names()) or 'alone'}>"


def _metadata(name: str) -> dict[str, str]:
    from .. import __version__

    return {
        "samp.name": name,
        "samp.description.text": "ctanb: Cherenkov-telescope data in Jupyter",
        "ctanb.version": __version__,
    }


def _fits_bytes(obj: Any, *, what: str) -> bytes:
    """FITS bytes of a path, bytes, HDUList, HDU or an object with ``to_hdulist()``."""
    from astropy.io import fits

    if isinstance(obj, bytes | bytearray):
        return bytes(obj)
    if isinstance(obj, str | Path):
        path = Path(obj)
        if not path.is_file():
            raise CtanbError(f"{what} file not found: {path}")
        return path.read_bytes()
    if hasattr(obj, "to_hdulist"):  # gammapy Map and friends
        obj = obj.to_hdulist()
    if isinstance(obj, fits.PrimaryHDU):
        obj = fits.HDUList([obj])
    elif isinstance(obj, fits.ImageHDU):  # viewers want the image in the primary HDU
        obj = fits.HDUList([fits.PrimaryHDU(data=obj.data, header=obj.header)])
    elif isinstance(obj, fits.hdu.base._BaseHDU):
        obj = fits.HDUList([fits.PrimaryHDU(), obj])
    if isinstance(obj, fits.HDUList):
        buffer = io.BytesIO()
        obj.writeto(buffer)
        return buffer.getvalue()
    raise CtanbError(
        f"cannot send a {type(obj).__name__} as a {what}: give a FITS path, HDUList, HDU "
        "or gammapy Map"
    )
