"""ED + ES inference (config ``inference.frames: ed_es``) against a run on every SAX image, on
held-out synthetic exams of both cine sequences.

    PYTHONPATH=. python benchmarks/ed_es_frames.py [--gre-exams 48] [--ssfp-exams 40] \
        [--gre-keep DIR] [--ssfp-keep DIR] [--gre-seed 30001] [--ssfp-seed 930001] \
        [--models-dir resources/models] [--threads 1]

Exams: legacy GRE cine of the legacy test seed 30001 (:func:`benchmarks.accuracy.generated`) and
bSSFP cine of the clinical test seed 930001 (:func:`benchmarks.landmarks_clinical.clinical_exams`),
or other held-out seeds (``--*-seed``, a second check of a rule chosen on the first);
``--*-keep`` reuse the exams those benchmarks stored (of the same seed).  Per sequence, printed: how often
:func:`~cmr_atlas.cine.inference.segment_exam_ed_es` chose the ED and ES frames of
:func:`~cmr_atlas.cine.inference.segment_exam` + ``choose_phases`` (max_volume), how often its
masks at those frames are bitwise equal, the share of SAX images it ran the network on, the ES
frame exact against the truth for both, and how often the curve slices alone (before the
neighbours on every slice) already had the whole stack's ES.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cmr_atlas.cine.inference import (curve_slices, exam_volumes_ml, load_models, segment_exam,  # noqa: E402
                                      segment_exam_ed_es)
from cmr_atlas.cine.segmentation import choose_phases  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.vocab import CAVITY  # noqa: E402


def compare(images, truth_exam: pd.Series, models, sequence: str) -> dict:
    batch = default("inference.batch")
    masks, qc = segment_exam(images, models, batch=batch, sequence=sequence)
    ed, es = choose_phases(exam_volumes_ml(images, masks), "max_volume")
    got, got_qc, (ed2, es2) = segment_exam_ed_es(images, models, batch=batch, ed_method="max_volume", sequence=sequence)
    curve = np.isin(np.arange(images.n_slices), curve_slices((masks[:, 0] == CAVITY).sum(axis=(1, 2))))
    es_curve = choose_phases(exam_volumes_ml(images, masks, include=curve), "max_volume")[1]
    return {"sequence": sequence, "ed_same": ed == ed2, "es_same": es == es2, "es_curve_same": es == es_curve,
            "masks_same": bool(np.array_equal(masks[:, [ed2, es2]], got[:, [ed2, es2]])),
            "share": len(got_qc) / len(qc), "es_exact_all": es == int(truth_exam["es_frame"]),
            "es_exact_ed_es": es2 == int(truth_exam["es_frame"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gre-exams", type=int, default=48)
    ap.add_argument("--ssfp-exams", type=int, default=40)
    ap.add_argument("--gre-keep", help="folder of benchmarks/accuracy.py's kept exams (seed 30001)")
    ap.add_argument("--ssfp-keep", help="folder of benchmarks/landmarks_clinical.py's kept exams (seed 930001)")
    ap.add_argument("--gre-seed", type=int, default=30001)
    ap.add_argument("--ssfp-seed", type=int, default=930001)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    from accuracy import generated
    from landmarks_clinical import clinical_exams

    torch.set_num_threads(args.threads)
    models = load_models(args.models_dir, method="heatmap", device="cpu", precision=default("inference.precision"))
    rows = []
    cohorts = (("cine_gre", generated(args.gre_exams, args.gre_seed, 2, 0.2, Path(args.gre_keep) if args.gre_keep else None)),
               ("cine_ssfp", clinical_exams(args.ssfp_exams, args.ssfp_seed, 2, 0.2,
                                            Path(args.ssfp_keep) if args.ssfp_keep else None)))
    for sequence, exams in cohorts:
        for images, truth in exams:
            rows.append(compare(images, truth["exams"].iloc[0], models, sequence))
            print(f"{sequence}: {len(rows)} exams", file=sys.stderr)
    df = pd.DataFrame(rows)
    print("ED + ES inference against every image (max_volume ED rule):")
    print(f"  {'sequence':10s} {'n':>3s} {'ED same':>8s} {'ES same':>8s} {'masks same':>11s} {'images':>7s} "
          f"{'ES exact all / ed_es':>21s} {'ES by curve slices alone':>25s}")
    for sequence, g in df.groupby("sequence"):
        print(f"  {sequence:10s} {len(g):3d} {g.ed_same.mean():8.3f} {g.es_same.mean():8.3f} {g.masks_same.mean():11.3f} "
              f"{g.share.mean():7.3f} {g.es_exact_all.mean():10.3f} / {g.es_exact_ed_es.mean():.3f} "
              f"{g.es_curve_same.mean():25.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
