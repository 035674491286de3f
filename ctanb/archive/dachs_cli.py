"""``python -m ctanb.archive.dachs_rd``: write the DaCHS resource (used by deploy/dachs/up)."""

from __future__ import annotations

from pathlib import Path

from .dachs_rd import write_resource
from .policy import AccessPolicy

__all__ = ["main"]


def _build_source(out: Path) -> Path:
    """Build the embedded archive from the DL3 releases and the simulated collection."""
    from .._settings import data_dir
    from .ingest import build_archive
    from .simulate import simulate

    sim = simulate(out.parent / "ctao-sim")
    build_archive(out, data_dir=data_dir(must_exist=True), sim_dir=sim)
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the DaCHS resource from an embedded archive (see :mod:`ctanb.archive.dachs_rd`)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m ctanb.archive.dachs_rd", description=main.__doc__
    )
    parser.add_argument("--db", type=Path, help="embedded archive (default: build one in --work)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/ctanb-dachs"))
    parser.add_argument("--resdir", type=Path, required=True)
    parser.add_argument("--userconfig", type=Path)
    parser.add_argument("--policy", type=Path, help="access policy YAML (default: the demo one)")
    parser.add_argument("--no-region-index", action="store_true")
    parser.add_argument("--mirror", type=Path, help="where to copy files gavo cannot read")
    parser.add_argument("--no-prov-documents", action="store_true",
                        help="no provenance documents of products (benchmarks)")  # fmt: skip
    parser.add_argument("--server-url", help="DaCHS's [web]serverURL: provenance locations "
                        "become its file URLs (default: archive-neutral $BASE/files/<DID>)")  # fmt: skip
    args = parser.parse_args(argv)
    db = args.db
    if db is None:
        db = args.work / "archive.db"
        if not db.exists():
            args.work.mkdir(parents=True, exist_ok=True)
            _build_source(db)
    policy = AccessPolicy.load(args.policy) if args.policy else None
    report = write_resource(db, args.resdir, args.userconfig, policy=policy,
                            region_index=not args.no_region_index, mirror_dir=args.mirror,
                            documents=not args.no_prov_documents,
                            server_url=args.server_url)  # fmt: skip
    print(json.dumps({"db": str(db), **report.__dict__}))
    return 0
