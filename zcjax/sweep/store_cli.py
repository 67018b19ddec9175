"""Command line for result stores: a self-contained copy, an integrity check, merging.

::

    python -m zcjax.sweep.store_cli backup  STORE COPY [--overwrite]
    python -m zcjax.sweep.store_cli integrity STORE [--repair] [--limit N]
    python -m zcjax.sweep.store_cli merge   STORE OTHER... [--on-conflict raise|ignore|replace]

``backup`` uses SQLite's online backup API: safe while a sweep writes to STORE, and COPY is one
file holding every committed row (also those still in STORE's ``-wal`` file). Use it, not ``cp``,
to copy a store (to Google Drive, to another machine).

``integrity`` checks every row's checksum and SQLite's own structure. Exit status 0: no damage;
1: damage found (with ``--repair``: damaged rows moved to the ``damaged`` table, so that rerunning
the sweep recomputes exactly those scores); 2: the store could not be read.

``merge`` copies other stores' rows into STORE (multi-host sweeps; also upgrades a copy of a
schema-1 store), and merges STORE's pending spill files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from zcjax.sweep.store import ResultStore, StoreError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zcjax.sweep.store_cli",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="write a self-contained, consistent copy of a store")
    b.add_argument("store")
    b.add_argument("copy")
    b.add_argument("--overwrite", action="store_true", help="replace COPY if it exists")
    i = sub.add_parser("integrity", help="check checksums and SQLite structure")
    i.add_argument("store")
    i.add_argument("--repair", action="store_true",
                   help="move damaged rows to the 'damaged' table (a rerun recomputes them)")
    i.add_argument("--limit", type=int, default=50, help="damaged rows to list")
    m = sub.add_parser("merge", help="copy other stores' rows (and pending spill files) in")
    m.add_argument("store")
    m.add_argument("others", nargs="*")
    m.add_argument("--on-conflict", choices=("raise", "ignore", "replace"), default="raise")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "backup":
            with ResultStore(args.store, readonly=True) as store:
                rows = store.backup(args.copy, overwrite=args.overwrite)
                pending = store.pending_spills()
            print(f"{args.copy}: {rows} rows, a self-contained copy of {args.store}")
            if pending:
                print(f"note: {len(pending)} spill files of {args.store} are not in the copy; "
                      "merge them first (`merge STORE`)", file=sys.stderr)
            return 0
        if args.command == "integrity":
            with ResultStore(args.store, readonly=not args.repair) as store:
                report = store.verify(repair=args.repair, limit=args.limit)
            print(report)
            return 0 if report.ok else 1
        with ResultStore(args.store) as store:
            spilled = store.merge_spills()
            result = store.merge_from(args.others, on_conflict=args.on_conflict) \
                if args.others else None
        if result is not None:
            print(f"{args.store}: {result.inserted} rows inserted, {result.duplicates} already "
                  f"there ({result.within_tolerance} equal within tolerance)")
        print(f"{args.store}: {spilled} spilled rows merged")
        return 0
    except (StoreError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
