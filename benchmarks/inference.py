"""Inference speed: images per second per model and seconds per whole exam.

    PYTHONPATH=. python benchmarks/inference.py [--threads 2] [--models-dir resources/models]
        [--random-weights]
        [--precision float32 auto] [--runtime torch onnxruntime]
        [--cache RESULTS/cache --n-exams 4] [--crop-margin-mm 0 30]

Runs on the CPU with ``--threads`` torch threads, and again on CUDA when present (autocast).
Every combination of ``--runtime`` (config ``inference.runtime``) and ``--precision`` that can run
is measured side by side (ONNX Runtime runs float32 only: its bfloat16 combination is skipped).
Timing is wall clock and CPU time of this process (the CPU time is the fairer figure on a shared
machine).  Images per second: synthetic noise on the network grid.  Whole exams: with ``--cache``,
the first ``--n-exams`` exams of an image cache (a results folder's ``cache/``); without it, one exam
of the held-out synthetic test cohort (seed 30001, exam 0), generated.  The segmentation runs on a
crop around the heart (config ``inference.crop_margin_mm``), so whole-exam timing depends on the
content; each ``--crop-margin-mm`` (0 = the whole grid) is measured on the same exams, with the CPU
time of the segmentation network's forward passes alone (``seg_logits``) beside it.  With
``--random-weights`` (or when shipped models are missing) untrained networks of the shipped
architectures are used (a random network finds no heart: no crop).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.imagecache import ExamImages  # noqa: E402
from cmr_atlas.cine.inference import Models, infer_exam, load_models, seg_logits  # noqa: E402
from cmr_atlas.nets.preprocess import Grid, prepare  # noqa: E402
from cmr_atlas.nets.registry import ModelFileError, card_grid  # noqa: E402
from cmr_atlas.nets.runtime import (autocast, forward, inference_model, resolve_precision,  # noqa: E402
                                    resolve_runtime)
from cmr_atlas.nets.unet import UNet  # noqa: E402


def random_models(device: torch.device, precision: str, runtime: str) -> Models:
    card = {"input": Grid(1.5, 128).to_dict()}
    torch.manual_seed(0)
    rt = resolve_runtime(runtime, device, precision)

    def net() -> torch.nn.Module:
        return inference_model(UNet(1, 4).to(device).eval(), 128, rt)

    return Models(net(), card, "heatmap", {m: (net(), card) for m in ("lax", "sax")}, device,
                  None if rt == "onnxruntime" else resolve_precision(precision, device), rt)


def bench(models: Models, exams: list[ExamImages], n_images: int, batch: int, margins: list[float],
          models_dir: str | None = None) -> None:
    x = np.random.default_rng(1).normal(size=(n_images, 128, 128)).astype(np.float32)
    named = [("seg_sax", models.seg)] + [(f"landmarks[{k}]", m) for k, (m, _) in models.landmark.items()]
    for name, model in named:
        forward(model, x[:batch], models.device, batch, models.dtype)  # warm-up
        if models.device.type == "cuda":
            torch.cuda.synchronize()
        t, c = time.perf_counter(), time.process_time()
        forward(model, x, models.device, batch, models.dtype)
        if models.device.type == "cuda":
            torch.cuda.synchronize()
        dt, dc = time.perf_counter() - t, time.process_time() - c
        print(f"  {name:22s} {n_images / dt:8.1f} images/s, {1e3 * dc / n_images:6.2f} CPU ms/image  "
              f"(batch {batch}, 128x128, forward only)")
    if models_dir and models.runtime == "torch":
        perf_seg(models, models_dir, n_images, batch)
    for margin in margins:
        whole(models, exams, batch, margin)


def perf_seg(models: Models, models_dir: str, n_images: int, batch: int) -> None:
    """Forward passes of the shipped perfusion network (its card's grid and frames as channels)."""
    from cmr_atlas.perfusion import segment

    try:
        net, card = segment.load_segmenter(models_dir)
    except ModelFileError:
        return
    net = net.to(models.device)
    g = card["input"]
    x = torch.from_numpy(np.random.default_rng(2).normal(
        size=(n_images, len(g["frame_offsets"]), g["size"], g["size"])).astype(np.float32)).to(models.device)
    for _ in range(2):  # warm-up, then timed
        t, c = time.perf_counter(), time.process_time()
        with torch.inference_mode(), autocast(models.device, models.dtype):
            for i in range(0, n_images, batch):
                net(x[i:i + batch])
        if models.device.type == "cuda":
            torch.cuda.synchronize()
        dt, dc = time.perf_counter() - t, time.process_time() - c
    print(f"  {'perf_seg':22s} {n_images / dt:8.1f} slices/s, {1e3 * dt / n_images:6.2f} ms/slice, "
          f"{1e3 * dc / n_images:6.2f} CPU ms/slice  (batch {batch}, {len(g['frame_offsets'])} frames x "
          f"{g['size']}x{g['size']}, forward only)")


def whole(models: Models, exams: list[ExamImages], batch: int, margin: float) -> None:
    """Whole-exam inference time per exam, and the segmentation forward passes' share."""
    wall = cpu = seg_cpu = 0.0
    n_img = n_lm = 0
    for exam in exams:
        t, c = time.perf_counter(), time.process_time()
        res = infer_exam(exam, models, ed_method=default("segmentation.ed_frame"),
                         absent_threshold=default("landmarks.absent_threshold"), batch=batch, crop_margin_mm=margin)
        wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - c
        grid = card_grid(models.seg_card)
        x = np.concatenate([prepare(exam.sax[s], p, grid) for s, p in enumerate(exam.sax_planes)])
        c = time.process_time()
        seg_logits(models.seg, models.seg_card, x, exam.n_frames, models, batch=batch, crop_margin_mm=margin)
        seg_cpu += time.process_time() - c
        n_img, n_lm = n_img + exam.n_slices * exam.n_frames, n_lm + len(res.landmarks)
    n = len(exams)
    print(f"  whole exam, crop margin {margin:g} mm: {wall / n:.2f} s, {cpu / n:.2f} CPU s per exam "
          f"(segmentation forward {seg_cpu / n:.2f} CPU s; {n} exams, {n_img / n:.0f} SAX images and "
          f"{n_lm / n:.0f} landmark rows per exam)")


def test_exams(cache: str | None, n: int) -> list[ExamImages]:
    """``n`` exams of an image cache folder, or exam 0 of the held-out synthetic test cohort."""
    from cmr_atlas.core.imagecache import load_exam_images

    if cache:
        return [load_exam_images(p) for p in sorted(Path(cache).glob("*.npz"))[:n]]
    from cmr_atlas.synth.mesa.cohort import generate_exam

    return [generate_exam(30001, 0).images]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--images", type=int, default=64, help="images per model for images/s")
    ap.add_argument("--cache", help="image cache folder (RESULTS/cache) whose first --n-exams exams are timed whole")
    ap.add_argument("--n-exams", type=int, default=4)
    ap.add_argument("--crop-margin-mm", type=float, nargs="+", default=[0.0, default("inference.crop_margin_mm")],
                    help="segmentation crop margins to time side by side (config inference.crop_margin_mm; 0 = whole grid)")
    ap.add_argument("--batch", type=int, default=default("inference.batch"), help="config inference.batch")
    ap.add_argument("--precision", nargs="+", default=["float32", "auto"], choices=["auto", "float32", "bfloat16"],
                    help="precisions to measure side by side (config inference.precision)")
    ap.add_argument("--runtime", nargs="+", default=["torch", "onnxruntime"], choices=["auto", "torch", "onnxruntime"],
                    help="runtimes to measure side by side (config inference.runtime)")
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"],
                    help="where to measure (cuda only where present)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    exams = test_exams(args.cache, args.n_exams)
    devices = [torch.device(d) for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    for dev in devices:
        for runtime, precision in itertools.product(args.runtime, args.precision):
            try:
                rt = resolve_runtime(runtime, dev, precision)
            except (ValueError, RuntimeError) as exc:
                print(f"skipped runtime {runtime}, precision {precision}: {exc}")
                continue
            dtype = None if rt == "onnxruntime" else resolve_precision(precision, dev)
            label = (f"CPU, {args.threads} threads" if dev.type == "cpu" else f"CUDA ({torch.cuda.get_device_name()})")
            label += f", {rt}, precision {precision} ({'float32' if dtype is None else str(dtype).removeprefix('torch.')})"
            try:
                models = (random_models(dev, precision, runtime) if args.random_weights else
                          load_models(args.models_dir, method="heatmap", device=str(dev), precision=precision,
                                      runtime=runtime))
                kind = "random weights" if args.random_weights else "shipped models"
            except ModelFileError as exc:
                print(f"shipped models unavailable ({exc}); using random weights")
                models, kind = random_models(dev, precision, runtime), "random weights"
            print(f"{label} [{kind}]")
            bench(models, exams, args.images if dev.type == "cpu" else args.images * 8, args.batch, args.crop_margin_mm,
                  None if kind == "random weights" else args.models_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
