"""Calibrated absent thresholds of the heatmap landmark networks (issue 16).

A landmark is reported where its heatmap's peak probability reaches a threshold.  One threshold for
every network, view, sequence and landmark (the config's ``landmarks.absent_threshold``) ignores
that the peaks differ between them; here each (sequence, view, landmark) gets its own, chosen on
validation exams (never a test cohort) from the peak probabilities at threshold 0
(``benchmarks/landmark_confidence.py``), and the network's card keeps them
(:func:`cmr_atlas.nets.heatmaps.card_thresholds` reads them at inference).

Criterion: the fewest errors, an error being a present landmark not reported, a landmark reported
on an image the truth has none on (false positive), or one reported farther than ``far_mm`` from
the truth (a wrong point is no better than a false one).  Among the thresholds with the fewest
errors (a grid, log-spaced) the geometric centre of the widest run is taken: the largest margin
in log-probability on both sides, so a threshold is not pushed against the validation set's
extreme peaks.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.landmarks import view_model
from cmr_atlas.nets.augment import LANDMARK_AUG
from cmr_atlas.nets.heatmaps import card_neighbour_frames, card_rotations, card_zooms
from cmr_atlas.nets.registry import routes

# candidate thresholds: log-spaced from 1e-3 (peaks below are background-level) to 0.5 (a peak above
# it is the most probable class at its pixel: never called absent)
GRID = np.geomspace(1e-3, 0.5, 55)
FAR_MM = 10.0  # a reported point farther than this from the truth counts as an error (observers: 2-3 mm)

# cohorts no threshold may be calibrated on: the held-out test seeds (benchmarks) and the training seeds
NOT_FOR_CALIBRATION = {30001, 930001, 940001, 940003, 910000, 910001, 920000, 920001, 940000, 940002}


def errors(conf: np.ndarray, truth_present: np.ndarray, correct: np.ndarray, grid: np.ndarray = GRID) -> np.ndarray:
    """Errors at each threshold of ``grid``: present landmarks not reported, absent ones reported,
    present ones reported but not ``correct`` (too far from the truth)."""
    conf = np.asarray(conf, float)[None]
    t = np.asarray(grid, float)[:, None]
    present = np.asarray(truth_present, bool)[None]
    ok = np.asarray(correct, bool)[None]
    reported = conf >= t
    return ((present & ~reported) | (~present & reported) | (present & reported & ~ok)).sum(1)


def choose_threshold(conf: np.ndarray, truth_present: np.ndarray, correct: np.ndarray,
                     grid: np.ndarray = GRID) -> float:
    """The threshold of :data:`GRID` with the fewest :func:`errors`, centred (geometric mean of the
    ends) in the widest run of thresholds that reach that minimum."""
    e = errors(conf, truth_present, correct, grid)
    best = e == e.min()
    runs, start = [], None
    for i, b in enumerate([*best, False]):
        if b and start is None:
            start = i
        elif not b and start is not None:
            runs.append((start, i - 1))
            start = None
    lo, hi = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
    return float(np.sqrt(grid[lo] * grid[hi]))


def exam_seed(exam_id: str) -> int | None:
    """The cohort seed in a synthetic exam id (``CLN930001-0015`` -> 930001), None if none."""
    digits = "".join(ch if ch.isdigit() else " " for ch in str(exam_id).split("-")[0]).split()
    return int(digits[-1]) if digits else None


def calibrate(records: pd.DataFrame, far_mm: float = FAR_MM) -> pd.DataFrame:
    """Per (sequence, view, landmark) of ``records`` (``landmark_confidence.py`` rows: confidence,
    truth_present, auto_truth): the chosen threshold, with the counts and the errors at it and at
    0.1 (the config's default) for the record."""
    seeds = {exam_seed(e) for e in records["exam_id"].unique()}
    bad = seeds & NOT_FOR_CALIBRATION
    if bad:
        raise ValueError(f"records of test or training seeds {sorted(bad)}: calibrate on validation exams only")
    rows = []
    for (seq, view, name), g in records.groupby(["sequence", "view", "landmark"], sort=True):
        conf, present = g["confidence"].to_numpy(float), g["truth_present"].to_numpy(bool)
        correct = g["auto_truth"].to_numpy(float) <= far_mm
        t = choose_threshold(conf, present, correct)
        e = errors(conf, present, correct, np.array([t, 0.1]))
        rows.append({"sequence": seq, "view": view, "landmark": name, "threshold": t,
                     "n_present": int(present.sum()), "n_absent": int((~present).sum()),
                     "errors": int(e[0]), "errors_at_0.1": int(e[1])})
    return pd.DataFrame(rows)


def card_decode(table: pd.DataFrame, rotations_deg: list[float], seeds: list[int], note: str) -> dict:
    """The card's ``decode`` entry (:func:`cmr_atlas.nets.heatmaps.card_thresholds`) from
    :func:`calibrate`'s rows of one network."""
    thr: dict = {}
    for r in table.itertuples():
        thr.setdefault(r.sequence, {}).setdefault(r.view, {})[r.landmark] = round(float(r.threshold), 5)
    return {"rotations_deg": [float(a) for a in rotations_deg], "absent_threshold": thr,
            "calibration": {"criterion": f"fewest misses + false positives + points > {FAR_MM:g} mm from the truth; "
                                         "centre of the widest minimising run of a log grid 1e-3..0.5",
                            "validation_seeds": sorted(seeds), "date": date.today().isoformat(), "note": note,
                            "per_landmark": table.to_dict("records")}}


def write_decode(table: pd.DataFrame, models_dir: str | Path, rotations_deg: list[float], seeds: list[int],
                 note: str) -> list[Path]:
    """Store :func:`calibrate`'s thresholds in the cards of the networks that decode them: per
    (sequence, view), the network of task ``lm_heatmap_<sax|lax>`` routed to that sequence in
    ``models_dir`` (:func:`cmr_atlas.nets.registry.routes`; e.g. bSSFP SAX -> the routed
    ``lm_heatmap_sax_ssfp``).  A card calibrated before keeps its other sequences' thresholds when
    they were made with the same rotations; with other rotations it is refused (``ValueError``:
    one card decodes every sequence with one set of rotations).  Returns the cards written."""
    task_routes = {m: routes(f"lm_heatmap_{m}", models_dir) for m in {view_model(v) for v in table["view"]}}
    names = [task_routes[view_model(v)].pick(q) for q, v in zip(table["sequence"], table["view"])]
    written = []
    for name, part in table.groupby(np.asarray(names), sort=True):
        path = Path(models_dir) / f"{name}.json"
        card = json.loads(path.read_text())
        new = card_decode(part, rotations_deg, seeds, note)
        old, same_rotations = card.get("decode") or {}, list(card_rotations(card)) == new["rotations_deg"]
        kept = {q: t for q, t in (old.get("absent_threshold") or {}).items() if q not in new["absent_threshold"]}
        if kept and not same_rotations:
            raise ValueError(f"{path}: thresholds of {sorted(kept)} were calibrated with rotations "
                             f"{old.get('rotations_deg')}, not {new['rotations_deg']}: calibrate them again too")
        if "rotations_choice" in old and same_rotations:
            new["rotations_choice"] = old["rotations_choice"]  # what chose the rotations still holds
        # the neighbour frames and zooms were read by the calibration's decoding (the card's): kept
        new.update({k: old[k] for k in ("neighbour_frames", "neighbour_frames_choice", "zooms", "zooms_choice")
                    if k in old})
        if kept:
            new["absent_threshold"] = {**kept, **new["absent_threshold"]}
            new["calibration"]["per_landmark"] = [r for r in old["calibration"]["per_landmark"]
                                                  if r["sequence"] in kept] + new["calibration"]["per_landmark"]
        card["decode"] = new
        path.write_text(json.dumps(card, indent=2) + "\n")
        written.append(path)
    return written


def _card(name: str, models_dir: str | Path) -> dict:
    """The card of ``name`` in ``models_dir``; ``ValueError`` naming the folder where it has none."""
    path = Path(models_dir) / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no model card {name}.json in {models_dir}")
    return json.loads(path.read_text())


def _set_decode(name: str, models_dir: str | Path, key: str, value, current, note: str) -> dict:
    """Set ``decode[key] = value`` in landmark network ``name``'s card, with ``note`` (what chose
    it) and today's date under ``decode[<key's stem>_choice]``; refused (``ValueError``) where the
    card's thresholds were calibrated with another value (``current(card)``, what decoding reads)."""
    card, path = _card(name, models_dir), Path(models_dir) / f"{name}.json"
    if not str(card.get("serves", name)).startswith("lm_heatmap_"):
        raise ValueError(f"{name} is not a landmark heatmap network: test-time decoding settings are for those")
    decode = dict(card.get("decode") or {})
    if decode.get("absent_threshold") and current(card) != value:
        raise ValueError(f"{path}: its absent thresholds were calibrated with {key} "
                         f"{current(card)}: calibrate them with {value} instead")
    decode[key] = value
    decode[f"{key.removesuffix('_deg')}_choice"] = {"note": note, "date": date.today().isoformat()}
    card["decode"] = decode
    path.write_text(json.dumps(card, indent=2) + "\n")
    return decode


def set_rotations(name: str, models_dir: str | Path, rotations_deg: list[float], note: str) -> dict:
    """Set the test-time rotations (deg) of landmark network ``name``'s card (``decode.rotations_deg``:
    the softmax maps of the rotated inputs, rotated back and averaged) with ``note`` (what chose them)
    and today's date.  Refused (``ValueError``) where the card's thresholds were calibrated with
    other rotations: calibrate them again with these (:func:`write_decode`).  Returns the entry."""
    return _set_decode(name, models_dir, "rotations_deg", [float(a) for a in rotations_deg],
                       lambda c: list(card_rotations(c)), note)


def set_zooms(name: str, models_dir: str | Path, zooms: list[float], note: str) -> dict:
    """Set the test-time magnifications of landmark network ``name``'s card (``decode.zooms``: each an
    extra unrotated look, :func:`cmr_atlas.nets.heatmaps.rotation_averaged_probs`; [] for none) with
    ``note`` and today's date; zooms outside the training augmentation's range are refused, and, as
    :func:`set_rotations`, where the card's thresholds were calibrated with other zooms."""
    lo, hi = LANDMARK_AUG.zoom
    if any(not lo <= z <= hi for z in zooms):
        raise ValueError(f"{name}: test-time zooms must lie within the training augmentation's {lo}-{hi}, got {zooms}")
    return _set_decode(name, models_dir, "zooms", [float(z) for z in zooms], lambda c: list(card_zooms(c)), note)


def set_neighbour_frames(name: str, models_dir: str | Path, frames: int, note: str) -> dict:
    """Set how many cine frames on each side a SAX landmark network's maps are averaged over
    (``decode.neighbour_frames``, :func:`cmr_atlas.nets.heatmaps.card_neighbour_frames`; 0: none)
    with ``note`` and today's date; refused for a network without SAX, and, as
    :func:`set_rotations`, where the card's thresholds were calibrated with another value."""
    if "sax" not in _card(name, models_dir).get("views", ["sax"]) or frames < 0:
        raise ValueError(f"{name}: neighbour frames are for SAX landmark networks and a count >= 0, got {frames}")
    return _set_decode(name, models_dir, "neighbour_frames", int(frames), card_neighbour_frames, note)
