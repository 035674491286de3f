"""``ctanb archive``: build, fill and serve the embedded archive."""

from __future__ import annotations

from pathlib import Path

import click

from .._errors import CtanbError

__all__ = ["archive"]

_DB = click.option(
    "--db", "db", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite archive file.",
)  # fmt: skip
_POLICY = click.option(
    "--policy", "policy_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None, help="Access-policy YAML (default: the bundled demo policy).",
)  # fmt: skip


def _policy(path: Path | None):
    from .policy import AccessPolicy

    return AccessPolicy.load(path) if path else AccessPolicy.demo()


def _echo_report(report) -> None:
    by_collection: dict[str, int] = {}
    for did in report.ingested:
        name = did.rsplit("/", 1)[-1].split("?", 1)[0]
        by_collection[name] = by_collection.get(name, 0) + 1
    for name, count in sorted(by_collection.items()):
        click.echo(f"ingested {count:4d} dataset(s) of {name}")
    for path, reason in report.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    click.echo(report.summary())


def _fail(exc: CtanbError) -> click.ClickException:
    return click.ClickException(str(exc))


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_db(db: Path, *, must_exist: bool) -> None:
    """Refuse up front a --db that is missing (when it must exist) or not an SQLite file,
    instead of starting and then failing every request with "file is not a database"."""
    if not db.exists():
        if must_exist:
            raise click.ClickException(
                f"archive {db} does not exist; make it with `ctanb archive build --db {db}`"
            )
        return
    try:
        with db.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise click.ClickException(f"cannot read archive {db}: {exc.strerror}") from None
    if head and head != _SQLITE_MAGIC:
        raise click.ClickException(
            f"{db} is not an archive database (not an SQLite file); give the file "
            "`ctanb archive build --db` made, or the name of a new file"
        )


@click.group()
def archive() -> None:
    """Build, fill and serve the embedded archive."""


@archive.command("ingest", short_help="Ingest data stores or event files.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_DB
@_POLICY
def ingest_command(paths: tuple[Path, ...], db: Path, policy_path: Path | None) -> None:
    """Ingest GADF data stores, folders of event files or event files into --db.

    Unreadable files are named with the reason and skipped; the exit status is
    0 when at least one dataset was ingested.

    Example: ``ctanb archive ingest ../shared/data/hess-dl3-dr1 sim/ --db archive.db``
    """
    from .ingest import ingest

    _check_db(db, must_exist=False)
    try:
        report = ingest(list(paths), db, policy=_policy(policy_path))
    except CtanbError as exc:
        raise _fail(exc) from None
    _echo_report(report)
    if not report.ingested:
        raise click.ClickException("nothing was ingested")


@archive.command("simulate", short_help="Write the simulated CTAO collection.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the simulated CTAO data store.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Random seed (0 to 4294967295).")  # fmt: skip
def simulate_command(out: Path, seed: int) -> None:
    """Write the simulated CTAO collection (GADF data store) to --out.

    Example: ``ctanb archive simulate --out sim/``
    """
    from .simulate import SIMULATED_RUNS, simulate

    try:
        path = simulate(out, seed=seed)
    except CtanbError as exc:
        raise _fail(exc) from None
    click.echo(f"simulated CTAO data store with {len(SIMULATED_RUNS)} runs in {path}")


@archive.command("build", short_help="Create --db from every release.")
@_DB
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the public releases (default: CTANB_DATA).")  # fmt: skip
@click.option("--sim", "sim", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the simulated CTAO store, simulated there when missing "
                   "(default: ctao-sim next to --db).")  # fmt: skip
@click.option("--no-sim", "no_sim", is_flag=True, default=False,
              help="Leave the simulated CTAO collection out.")  # fmt: skip
@_POLICY
def build_command(
    db: Path, data: Path | None, sim: Path | None, no_sim: bool, policy_path: Path | None
) -> None:
    """Create --db from every known release plus the simulated CTAO collection.

    Example: ``ctanb archive build --db archive.db`` (releases from CTANB_DATA)
    """
    from .ingest import build_archive

    _check_db(db, must_exist=False)
    if no_sim:
        sim = None
    elif sim is None:  # as the help says: the simulated collection is part of the archive
        sim = Path(db).expanduser().resolve().parent / "ctao-sim"
    try:
        report = build_archive(db, data_dir=data, sim_dir=sim, policy=_policy(policy_path))
    except CtanbError as exc:
        raise _fail(exc) from None
    _echo_report(report)
    if not report.ingested:
        raise click.ClickException("nothing was ingested")


@archive.command("serve", short_help="Serve --db as a TAP/DataLink service.")
@_DB
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port, 0 to 65535 (0: any free one; the URL is printed).")  # fmt: skip
@_POLICY
def serve_command(db: Path, host: str, port: int, policy_path: Path | None) -> None:
    """Serve --db as a TAP/DataLink service.

    The URL is recorded in CTANB_HOME/archive.json while the service runs, so
    ``ctanb.connect()`` and ``ctanb run`` in this user's notebooks find it.

    Example: ``ctanb archive serve --db archive.db --port 0``
    """
    import json
    import os
    import signal
    import sys

    import uvicorn

    from ..launcher import archive_info_path
    from .service import create_app

    _check_db(db, must_exist=True)
    try:
        app = create_app(db, policy=_policy(policy_path))
    except CtanbError as exc:
        raise _fail(exc) from None
    sock = _listen(host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{sock.getsockname()[1]}"
    announce = archive_info_path()
    record = json.dumps({"url": url, "db": str(db.resolve()), "pid": os.getpid()})
    announce.parent.mkdir(parents=True, exist_ok=True)
    announce.write_text(record)
    click.echo(f"archive: TAP service at {url} (recorded in {announce})")
    # uvicorn re-raises the SIGTERM it caught once it has stopped; exit through Python then,
    # so that the record below is removed (else connect() would find a stopped archive).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])
    finally:
        sock.close()
        # Only our own record: another archive started since then keeps its announcement.
        try:
            if announce.read_text() == record:
                announce.unlink()
        except OSError:
            pass


def _listen(host: str, port: int):
    """A listening socket on *host*:*port* (0: any free port), or a message saying why not."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError):
        raise click.ClickException(f"--host {host!r} is not an address of this machine") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = f"port {port} is in use (another archive?); choose another --port or --port 0"
        elif exc.errno == errno.EACCES:
            reason = f"port {port} needs administrator rights; choose a port above 1023"
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = f"{host} is not an address of this machine"
        else:
            reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


@archive.command("publish", short_help="Publish products into an archive.")
@click.argument("products", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--archive", "archive_url", required=True, help="Base URL of the archive.")
@click.option("--token", default=None, help="Your archive token (default: CTANB_TOKEN).")
@click.option("--curation", "curation", default=None,
              help='Curation fields as JSON, e.g. \'{"title": "Crab counts"}\'.')  # fmt: skip
def publish_command(products: tuple[Path, ...], archive_url: str, token: str | None,
                    curation: str | None) -> None:  # fmt: skip
    """Publish PRODUCTS into the archive; prints each product's DID.

    Example: ``ctanb archive publish products/maps/counts.fits --archive
    http://127.0.0.1:8765 --curation '{"title": "MSH 15-52 counts"}'``
    """
    import json

    from ..client.archive import connect

    # One message for text that is not JSON and for JSON that is not an object.
    try:
        fields = json.loads(curation) if curation else None
    except ValueError:
        fields = []
    if curation and not isinstance(fields, dict):
        raise click.ClickException(
            '--curation must be a JSON object of curation fields, e.g. \'{"title": "Crab counts"}\''
        )
    failed = 0
    try:
        archive = connect(archive_url, token=token)
    except CtanbError as exc:
        raise _fail(exc) from None
    for product in products:
        try:
            click.echo(str(archive.publish(product, curation=fields)))
        except CtanbError as exc:
            click.echo(f"ctanb: error: {exc}", err=True)
            failed += 1
    if failed:
        raise SystemExit(1)
