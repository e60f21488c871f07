"""Report section of the TI-scout stage: null points found, the LGE inversion-time audit (which
LGE series were acquired with a badly nulled myocardium) and saliency maps of a few windows (the
STEMI-Net paper's Figure 4)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cmr_atlas.report.html import Page, ReportInputs, read_result  # noqa: E402

N_SALIENCY_SCOUTS = 3


def tiscout_section(page: Page, inputs: ReportInputs) -> None:
    sel = read_result(inputs.results, "ti_selection")
    if sel is None:
        page.note("ti_selection.parquet not found: the TI-scout stage has not run for this results folder.")
        return
    if not len(sel):
        page.p("No exam of this cohort has a TI scout.")
        return
    ok = sel.qc_reason.isna()
    page.p(f"TI scouts: {len(sel)} in {sel.exam_id.nunique()} exams; reliable null point: {int(ok.sum())}; "
           f"median null TI {np.nanmedian(sel.null_ti_ms[ok]) if ok.any() else float('nan'):.0f} ms "
           f"(method {', '.join(sorted(sel.method.dropna().unique()))}).")
    if (~ok).any():
        page.table(sel.qc_reason[~ok].str.replace(r"\d+(\.\d+)?", "#", regex=True).value_counts()
                   .rename_axis("TI scout QC reason").reset_index(name="scouts"))
    _audit(page, read_result(inputs.results, "lge_ti_audit"))
    _saliency(page, inputs, sel[ok])


def audit_summary(aud: pd.DataFrame) -> pd.DataFrame:
    """Verdict counts per LGE kind, with the median TI error (LGE TI - expected null)."""
    g = aud.groupby(["kind", "verdict"])
    return pd.DataFrame({"series": g.size(), "median TI error (ms)": g.ti_error_ms.median()}).reset_index()


def _audit(page: Page, aud: pd.DataFrame | None) -> None:
    if aud is None or not len(aud):
        page.note("No LGE series audited (lge_ti_audit empty or absent).")
        return
    page.p("LGE inversion time against the myocardial null expected at the LGE's acquisition time: the "
           "scouts' Look-Locker null converted to the LGE readout (tiscout.audit.scout_to_lge) and drifted "
           "by the contrast washout in between (docs/tiscout.md).")
    page.table(audit_summary(aud), digits=0)
    bad = aud[aud.verdict.isin(["too_short", "too_long"])].sort_values("ti_error_ms", key=np.abs, ascending=False)
    if len(bad):
        page.p(f"Worst nulled LGE series ({len(bad)} in all):")
        page.table(bad.head(12)[["exam_id", "series_index", "kind", "expected_null_ti_ms", "lge_ti_ms", "ti_error_ms",
                                 "verdict"]], digits=0)


def _saliency(page: Page, inputs: ReportInputs, sel: pd.DataFrame) -> None:
    from cmr_atlas.core.seriescache import list_series_images, load_series_images
    from cmr_atlas.tiscout.model import load_ti_model
    from cmr_atlas.tiscout.saliency import window_saliency
    from cmr_atlas.tiscout.windows import order_scout

    cache = inputs.results / "cache"
    items = []
    for r in sel.head(N_SALIENCY_SCOUTS).itertuples():
        paths = [p for p in list_series_images(cache, r.exam_id, ("ti_scout",)) if p.name.startswith(f"{r.series_index:03d}_")]
        if not paths or pd.isna(r.null_frame):
            continue
        s = load_series_images(paths[0])
        n = int(s.n_frames[0])
        sc = order_scout(s.pixels[0, :n], s.inversion_time_ms[0, :n])
        name = str(r.method).split(":")[0]
        model, card = load_ti_model(name, inputs.models_dir) if inputs.models_dir else load_ti_model(name)
        t0 = [t for t in (int(r.null_frame) - 2, int(r.null_frame), int(r.null_frame) + 3) if 2 <= t <= n - 2]
        maps = window_saliency(model, card, sc.frames, tuple(s.planes[0].pixel_spacing_mm), t0)
        path = page.out_dir / f"tiscout_saliency_{r.exam_id}_{r.series_index}.png"
        saliency_figure(maps, t0, sc.ti_ms, path)
        items.append((path, f"{r.exam_id} series {r.series_index}: windows t0 = {t0}, null frame {int(r.null_frame)}"))
    if items:
        page.p("Saliency (|d logit / d pixel| over the 4 frames of a window, on its t0 frame): "
               "before the null (early), at it, and after.")
        page.figs(items)


def saliency_figure(maps: list, t0: list[int], ti_ms: np.ndarray, path: str | Path) -> Path:
    """Top row the windows' t0 frames, bottom row the saliency over them (paper's Figure 4)."""
    fig, ax = plt.subplots(2, len(maps), figsize=(2.4 * len(maps), 5.0), squeeze=False)
    for k, ((img, sal, p), t) in enumerate(zip(maps, t0)):
        ax[0, k].imshow(img, cmap="gray")
        ax[0, k].set_title(f"t0 {t}: TI {ti_ms[t]:.0f} ms\nP(acceptable) {p:.2f}", fontsize=8)
        ax[1, k].imshow(img, cmap="gray")
        ax[1, k].imshow(np.ma.masked_less(sal, 0.15), cmap="jet", alpha=0.55, vmin=0, vmax=1)
        for a in ax[:, k]:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
