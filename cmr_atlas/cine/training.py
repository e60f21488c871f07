"""Training data of the cine networks: annotated samples from a training cohort, written to and
read from ``cmr-atlas train data`` folders (the models are trained by :mod:`cmr_atlas.cine.train_models`).

By default the training cohort is synthetic and generated in memory with seeds disjoint from the
demo and test cohorts (config ``train.seed``; the demo uses 20001).  Two protocols
(:data:`PROTOCOLS`): the legacy GRE cine (``mesa``, seeds 910000-910001 for the shipped models) and
the bSSFP cine of the clinical exams (``clinical``: SAX, 2CH, 3CH, 4CH; seed 920000 for the shipped
models; the held-out clinical test cohort of ``benchmarks/landmarks_clinical.py`` is seed 930001,
the test-suite's clinical cohort seed 86).  A data folder holds
``seg.npz``, ``lm_lax.npz``, ``lm_sax.npz`` (see :class:`cmr_atlas.cine.training_data.Samples`)
and ``data.json`` (provenance).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.cine.landmarks import MODEL_VIEWS, landmark_names
from cmr_atlas.core.vocab import LANDMARKS, VIEWS
from cmr_atlas.cine.training_data import landmark_samples, segmentation_samples
from cmr_atlas.nets.samples import Samples
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.synth.anatomy import MYOCARDIAL_DENSITY_G_PER_ML

log = logging.getLogger(__name__)

SEG_GRID = Grid(1.5, 128)  # 192 mm field of view
LM_GRID = Grid(1.5, 128)
LAX_EXTRA_FRAMES = 4  # LAX cines: ED, ES and extra_frames + 4 other frames

Annotated = tuple[ExamImages, pd.DataFrame, pd.DataFrame]  # images, truth contours, truth landmarks


PROTOCOLS = {"mesa": "cine_gre", "clinical": "cine_ssfp"}  # synthetic protocol -> its cine sequence


def clinical_cine(seed: int, index: int, mi_fraction: float, observers: int = 0,
                  breathing_p: float | None = None) -> tuple[ExamImages, dict]:
    """The bSSFP cine of clinical exam ``index`` of cohort ``seed`` (SAX stack and the 2CH, 3CH and
    4CH cines) and its truth tables (``contours``, ``landmarks``, ``volumes`` and an ``exams`` row
    with the true ED/ES frames, EDV, ESV, EF and LV mass), generated in memory.  Only the cine
    renderer runs, on the exam's own random streams, so the images are those of the full exam's
    cine (:func:`cmr_atlas.synth.clinical.cohort.generate_exam`) at a fraction of its cost.
    ``breathing_p``: the share of cines acquired while the patient breathes (None: the protocol's,
    :data:`cmr_atlas.synth.clinical.cine.BREATHING_P`); another share keeps the subject and heart,
    not the cine's later draws (breath-hold shifts, noise)."""
    from cmr_atlas.synth.clinical import cine, cohort

    rngs = cohort.exam_streams(seed, index)  # the full exam's streams: same subject, heart and cine
    ctx = cohort.make_context(seed, index, mi_fraction, rngs)
    res = cine.render(ctx, rngs["cine"], observers, cine.BREATHING_P if breathing_p is None else breathing_p)
    sax = sorted(((k, p, im) for s in res.series if s.kind == "cine" and s.view == "sax"
                  for k, p, im in zip(s.slice_indices, s.planes, s.images)), key=lambda t: t[0])
    lax = {s.view: s for s in res.series if s.kind == "cine" and s.view != "sax"}
    vol = res.truth["volumes"].sort_values("frame")
    images = ExamImages(ctx.label, np.stack([im for _, _, im in sax]).astype(np.float32), [p for _, p, _ in sax],
                        vol["time_ms"].to_numpy(dtype=float), {v: s.images[0].astype(np.float32) for v, s in lax.items()},
                        {v: s.planes[0] for v, s in lax.items()})
    ed, es = (vol[vol["phase"] == ph].iloc[0] for ph in ("ED", "ES"))
    edv, esv = float(ed["volume_ml"]), float(es["volume_ml"])
    exams = pd.DataFrame([{"exam_id": ctx.label, "ed_frame": int(ed["frame"]), "es_frame": int(es["frame"]),
                           "edv_ml": edv, "esv_ml": esv, "ef_pct": 100.0 * (edv - esv) / edv,
                           "lv_mass_g": MYOCARDIAL_DENSITY_G_PER_ML * float(ed["myo_volume_ml"])}])
    return images, {**res.truth, "exams": exams}


def clinical_cine_exam(seed: int, index: int, mi_fraction: float, observers: int = 0,
                       breathing_p: float | None = None) -> Annotated:
    """:func:`clinical_cine` as training data: images, truth contours and landmarks."""
    images, truth = clinical_cine(seed, index, mi_fraction, observers, breathing_p)
    return images, truth["contours"], truth["landmarks"]


def generated_exam(seed: int, index: int, mi_fraction: float, protocol: str = "mesa",
                   breathing_p: float | None = None) -> Annotated:
    """Synthetic exam ``index`` of cohort ``seed`` of ``protocol`` (:data:`PROTOCOLS`), generated
    in memory (no DICOM round trip); ``breathing_p``: see :func:`clinical_cine` (clinical only)."""
    if protocol == "clinical":
        return clinical_cine_exam(seed, index, mi_fraction, breathing_p=breathing_p)
    from cmr_atlas.synth.mesa import cohort

    ex = cohort.generate_exam(seed, index, mi_fraction=mi_fraction)
    return ex.images, ex.truth["contours"], ex.truth["landmarks"]


def training_lax_planes(data_info: dict) -> dict[str, list]:
    """``{view: [SlicePlane, ...]}``: the long-axis planes of every exam a training data provenance
    (:func:`load_data`'s info) records, from the generators' geometry (nothing rendered); parts of
    ingested cohorts (no ``cohort_seed``) are skipped."""
    from cmr_atlas.synth.clinical import cohort as clinical
    from cmr_atlas.synth.mesa import cohort as mesa

    out: dict[str, list] = {}
    for part in data_parts(data_info):
        if "cohort_seed" not in part:
            continue
        seed, mi = int(part["cohort_seed"]), float(part.get("mi_fraction", 0.2))
        first, last = part["exam_indices"] if "exam_indices" in part else (0, int(part["n_exams"]) - 1)
        for i in range(int(first), int(last) + 1):
            planes = (clinical.make_context(seed, i, mi).geometry.lax_planes if part.get("protocol") == "clinical"
                      else mesa.lax_planes(seed, i, mi))
            for view, plane in planes.items():
                out.setdefault(view, []).append(plane)
    return out


def cohort_exams(cohort_dir: str | Path, cache_dir: str | Path, exam_id_key: str) -> Iterator[Annotated]:
    """Exams of an ingested synthetic cohort: truth tables + the ingest image cache."""
    from cmr_atlas.core.ids import exam_id
    from cmr_atlas.core.imagecache import load_exam_images

    truth = Path(cohort_dir) / "truth"
    subjects = pd.read_parquet(truth / "subjects.parquet")
    contours = pd.read_parquet(truth / "contours.parquet")
    landmarks = pd.read_parquet(truth / "landmarks.parquet")
    for label, uid in zip(subjects["exam_id"], subjects["study_instance_uid"]):
        path = Path(cache_dir) / f"{exam_id(uid, exam_id_key)}.npz"
        if not path.is_file():
            log.warning("no cache file for a truth exam; skipped")
            continue
        images = load_exam_images(path)
        yield images, contours[contours["exam_id"] == label], landmarks[landmarks["exam_id"] == label]


def exam_samples(exam: Annotated, rng: np.random.Generator, extra_frames: int,
                 landmark_grid: Grid = LM_GRID, sax_neighbour_slices: int = 0) -> dict[str, Samples]:
    """One exam's segmentation and landmark samples; ``sax_neighbour_slices``: the SAX landmark
    images carry that many slices either side as channels
    (:func:`~cmr_atlas.cine.training_data.landmark_samples`)."""
    images, contours, landmarks = exam
    out = {"seg": segmentation_samples(images, contours, SEG_GRID, rng, extra_frames)}
    for m in MODEL_VIEWS:
        # a cine has only two LAX images per frame: take more frames of it
        extra = extra_frames + LAX_EXTRA_FRAMES if m == "lax" else extra_frames
        out[f"lm_{m}"] = landmark_samples(images, landmarks, m, landmark_grid, rng, extra,
                                          neighbour_slices=sax_neighbour_slices if m == "sax" else 0)
    return out


def _generated_samples(job: tuple[int, int, int, float, str, Grid, int, float | None]) -> dict[str, Samples]:
    seed, index, extra, mi, protocol, landmark_grid, neighbours, breathing_p = job
    # per-exam generator: the same samples whatever the number of worker processes
    exam = generated_exam(seed, index, mi, protocol, breathing_p)
    return exam_samples(exam, np.random.default_rng([seed, index]), extra, landmark_grid, neighbours)


def _generated_parts(seed: int, n_exams: int, extra_frames: int, jobs: int,
                     mi_fraction: float, protocol: str = "mesa",
                     landmark_grid: Grid = LM_GRID, sax_neighbour_slices: int = 0,
                     breathing_p: float | None = None) -> list[dict[str, Samples]]:
    """Samples of exams ``0..n_exams-1`` of cohort ``seed``, generated by ``jobs`` processes."""
    todo = [(seed, i, extra_frames, mi_fraction, protocol, landmark_grid, sax_neighbour_slices, breathing_p)
            for i in range(n_exams)]
    parts = []
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs) as pool:
            for i, r in enumerate(pool.imap(_generated_samples, todo)):
                parts.append(r)
                log.info("training data: %d/%d exams", i + 1, n_exams)
    else:
        for i, job in enumerate(todo):
            parts.append(_generated_samples(job))
            log.info("training data: %d/%d exams", i + 1, n_exams)
    return parts


def write_data(out: str | Path, parts: list[dict[str, Samples]], extra_frames: int, provenance: dict,
               landmark_grid: Grid = LM_GRID, sax_neighbour_slices: int = 0) -> dict:
    """Concatenate the exams' samples into ``out``'s ``.npz`` files; write and return ``data.json``."""
    out = Path(out)
    counts = {}
    for key in ("seg", *(f"lm_{m}" for m in MODEL_VIEWS)):
        samples = Samples.concat([p[key] for p in parts])
        samples.save(out / f"{key}.npz")
        counts[key] = len(samples)
    info = {"n_exams": len(parts), "extra_frames": extra_frames, "images": counts,
            "channels_by_view": {v: list(landmark_names(v)) for vs in MODEL_VIEWS.values() for v in vs},
            "segmentation_grid": SEG_GRID.to_dict(), "landmark_grid": landmark_grid.to_dict(),
            **({"sax_neighbour_slices": sax_neighbour_slices} if sax_neighbour_slices else {}), **provenance}
    (out / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def build_data(out: str | Path, seed: int, n_exams: int, extra_frames: int, jobs: int, mi_fraction: float,
               cohort: str | Path | None = None, cache: str | Path | None = None,
               exam_id_key: str | None = None, protocol: str = "mesa", landmark_grid: Grid = LM_GRID,
               sax_neighbour_slices: int = 0, breathing_p: float | None = None) -> dict:
    """Write the training samples of ``n_exams`` exams generated from cohort ``seed`` of synthetic
    ``protocol`` (:data:`PROTOCOLS`) to ``out``; with ``cohort`` (and its image ``cache`` and
    ``exam_id_key``) the exams of that ingested legacy synthetic cohort instead (then ``seed``
    seeds the frame choice only).  The landmark samples are on ``landmark_grid`` (the shipped
    networks': :data:`LM_GRID`; the paper's 1 mm is ``Grid(1.0, 192)``, the same field of view);
    the landmark training takes its grid from the folder.  ``sax_neighbour_slices`` k > 0: the SAX
    landmark images carry k slices either side as channels (``data.json``'s
    ``sax_neighbour_slices``; a network trained on them takes such inputs).  ``breathing_p``
    (clinical exams only): the share of cines acquired while the patient breathes, to train on more
    of them than the protocol has (None: the protocol's; ``data.json`` records it)."""
    if protocol not in PROTOCOLS:
        raise SystemExit(f"unknown protocol {protocol!r}: choose {', '.join(PROTOCOLS)}")
    if breathing_p is not None and (protocol != "clinical" or cohort is not None or not 0.0 <= breathing_p <= 1.0):
        raise SystemExit(f"breathing share {breathing_p}: a number in [0, 1], for exams generated with the "
                         "clinical protocol only (the legacy GRE cines are all breath-held)")
    check_landmark_grid(landmark_grid)
    if cohort is not None:
        rng = np.random.default_rng(seed)
        parts = [exam_samples(e, rng, extra_frames, landmark_grid, sax_neighbour_slices)
                 for e in cohort_exams(cohort, cache, exam_id_key)]
        return write_data(out, parts, extra_frames, {"source": "ingested synthetic cohort",
                                                     "sequences": [PROTOCOLS["mesa"]]}, landmark_grid,
                          sax_neighbour_slices)
    parts = _generated_parts(seed, n_exams, extra_frames, jobs, mi_fraction, protocol, landmark_grid,
                             sax_neighbour_slices, breathing_p)
    source = ("cmr_atlas.cine.training.clinical_cine_exam (bSSFP cine of the clinical exams)"
              if protocol == "clinical" else "cmr_atlas.synth.mesa.cohort.generate_exam")
    provenance = {"source": f"synthetic, generated in memory ({source})", "protocol": protocol,
                  "sequences": [PROTOCOLS[protocol]], "cohort_seed": seed, "exam_indices": [0, n_exams - 1],
                  "mi_fraction": mi_fraction, **({"breathing_p": breathing_p} if breathing_p is not None else {})}
    return write_data(out, parts, extra_frames, provenance, landmark_grid, sax_neighbour_slices)


def check_landmark_grid(grid: Grid) -> None:
    """Refuse a landmark grid the heatmap U-Net cannot take (its side halves three times) or that
    cannot hold the heart (the field of view, ``spacing_mm * size``, under 150 mm)."""
    if grid.spacing_mm <= 0 or grid.size <= 0 or grid.size % 8:
        raise SystemExit(f"landmark grid {grid.spacing_mm} mm x {grid.size}: the size must be a positive "
                         "multiple of 8 (the U-Net halves it three times) and the spacing positive")
    if grid.fov_mm < 150:
        raise SystemExit(f"landmark grid {grid.spacing_mm} mm x {grid.size} covers {grid.fov_mm:.0f} mm: "
                         "at least 150 mm are needed to hold the heart")



def data_parts(info: dict) -> list[dict]:
    """The provenance of each data folder a training pooled (:func:`load_data`'s info: one folder's
    info is its own only part)."""
    return info.get("parts", [info])


def load_data(data_dirs: list[str | Path], key: str) -> tuple[Samples, dict]:
    """Samples ``key`` (seg, lm_lax, lm_sax) of one or more ``train data`` folders, concatenated
    (exams stay distinct, so the exam-wise split holds), and the provenance of each folder."""
    infos, parts, folder = [], [], []
    for d in map(Path, data_dirs):
        if not (d / "data.json").is_file():
            raise SystemExit(f"{d}: not a training-data folder (no data.json; build it with `cmr-atlas train data`)")
        info = json.loads((d / "data.json").read_text())
        if infos and (info["segmentation_grid"], info["landmark_grid"]) != (
                infos[0]["segmentation_grid"], infos[0]["landmark_grid"]):
            raise SystemExit(f"{d}: its network grids differ from {data_dirs[0]}'s; rebuild it")
        # only the SAX landmark images carry neighbouring slices: other samples pool across folders
        if key == "lm_sax" and infos and info.get("sax_neighbour_slices", 0) != infos[0].get("sax_neighbour_slices", 0):
            raise SystemExit(f"{d}: its SAX images carry {info.get('sax_neighbour_slices', 0)} neighbouring slices "
                             f"either side, {data_dirs[0]}'s {infos[0].get('sax_neighbour_slices', 0)}; rebuild one")
        infos.append(info)
        part = Samples.load(d / f"{key}.npz")
        for v in np.unique(part.view) if part.points is not None else ():
            view = VIEWS[int(v)]
            if info.get("channels_by_view", {}).get(view, list(LANDMARKS[view])) != list(landmark_names(view)):
                raise SystemExit(f"{d}: its {view} landmarks are in an older channel order; rebuild it")
        parts.append(part)
        folder.append(np.full(len(part), len(infos) - 1))
    info = infos[0] if len(infos) == 1 else {
        "n_exams": sum(i["n_exams"] for i in infos),
        "images": {k: sum(i["images"][k] for i in infos) for k in infos[0]["images"]},
        "segmentation_grid": infos[0]["segmentation_grid"], "landmark_grid": infos[0]["landmark_grid"],
        "parts": infos}
    samples = Samples.concat(parts)
    samples.meta["folder"] = np.concatenate(folder)  # which of ``data_dirs`` each sample came from
    return samples, info


def upgrade_channel_order(src: str | Path, dst: str | Path) -> dict:
    """Copy the ``train data`` folder ``src`` to ``dst`` with its landmark points in the current
    channel order (:func:`cmr_atlas.cine.landmarks.landmark_names`): the same images and points,
    the channels of a view whose order changed (3CH, see ``CHANNEL_ORDER``) permuted, so that a
    folder built before the change need not be generated again."""
    import shutil

    src, dst = Path(src), Path(dst)
    info = json.loads((src / "data.json").read_text())
    dst.mkdir(parents=True, exist_ok=True)
    for key in ("seg", *(f"lm_{m}" for m in MODEL_VIEWS)):
        if not key.startswith("lm_"):
            shutil.copyfile(src / f"{key}.npz", dst / f"{key}.npz")
            continue
        s = Samples.load(src / f"{key}.npz")
        for code in np.unique(s.view):
            view = VIEWS[int(code)]
            old = info.get("channels_by_view", {}).get(view, list(LANDMARKS[view]))
            perm = [old.index(name) for name in landmark_names(view)]
            rows = s.view == code
            s.points[rows] = s.points[rows][:, perm]
        s.save(dst / f"{key}.npz")
    info["channels_by_view"] = {v: list(landmark_names(v)) for vs in MODEL_VIEWS.values() for v in vs}
    info["upgraded_from"] = str(src)
    (dst / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
