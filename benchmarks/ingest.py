"""Ingest throughput on a synthetic cohort, single process, against pydicom alone.

    PYTHONPATH=$PWD python benchmarks/ingest.py [--n-exams 4] [--slices 10] [--frames 20] [--size 192]
    PYTHONPATH=$PWD python benchmarks/ingest.py --cohort DIR   # e.g. from `cmr-atlas synth`

Writes a cohort with `tests/dicom/exams.py` (Siemens and GE layouts alternating), or uses
an existing one (``DIR/dicom/<exam>/...``), then times, each in a fresh subprocess so that peak memory (ru_maxrss) belongs to that phase alone:

* ``ingest``: :func:`cmr_atlas.dicom.index.ingest_folders` with the image cache written;
* ``ingest --no-cache``: the same without writing the npz image cache;
* ``pydicom``: ``dcmread`` of every file + ``pixel_array`` (what any reader must at least do).

Files are in the page cache (just written): figures are CPU-bound, not disk-bound.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def phase(name: str, root: Path, out: Path) -> dict:
    files = _files(root / "dicom")
    t0 = time.perf_counter()
    if name == "pydicom":
        import pydicom

        for f in files:
            pydicom.dcmread(f).pixel_array
    else:
        from cmr_atlas.dicom.index import ingest_folders

        folders = sorted(p.name for p in (root / "dicom").iterdir())
        rows = ingest_folders(root / "dicom", folders, "benchmark-key", None if name == "ingest_nocache" else out)
        assert any(e["status"] == "ok" for e in rows.exams), [e["qc_reason"] for e in rows.exams]
    dt = time.perf_counter() - t0
    return {"phase": name, "seconds": dt, "images": len(files), "mb": sum(f.stat().st_size for f in files) / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-exams", type=int, default=4)
    ap.add_argument("--slices", type=int, default=10)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--cohort", type=Path, help="existing cohort folder (with dicom/) instead of writing one")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.dir, Path(args.out_dir) / "cache")))
        return 0

    with tempfile.TemporaryDirectory(prefix="ingest_bench_") as tmp:
        root = args.cohort
        if root is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests/ helpers
            from tests.dicom.exams import write_cohort

            root = Path(tmp)
            write_cohort(root / "dicom", args.n_exams, seed=0, n_slices=args.slices, n_frames=args.frames,
                         rows=args.size, cols=args.size)
            what = (f"{args.n_exams} exams (tests/dicom/exams.py), {args.slices} SAX slices x "
                    f"{args.frames} frames, {args.size}x{args.size} px")
        else:
            what = f"{len(list((root / 'dicom').iterdir()))} exams from {root}"
        results = []
        for name in ("ingest", "ingest_nocache", "pydicom"):
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            out = subprocess.run([sys.executable, __file__, "--phase", name, "--dir", str(root),
                                  "--out-dir", str(Path(tmp) / "out")],
                                 capture_output=True, text=True, env=env, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r0 = results[0]
    print(f"cohort: {what}; {r0['images']} files, {r0['mb']:.1f} MB")
    floor = results[-1]["seconds"]
    print(f"{'phase':<16}{'seconds':>9}{'images/s':>10}{'MB/s':>8}{'peak RSS MB':>13}{'x pydicom':>11}")
    for r in results:
        print(f"{r['phase']:<16}{r['seconds']:>9.2f}{r['images'] / r['seconds']:>10.0f}"
              f"{r['mb'] / r['seconds']:>8.1f}{r['peak_rss_mb']:>13.0f}{r['seconds'] / floor:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
