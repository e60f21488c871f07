"""Inference speed: images per second per model and seconds per whole exam.

    PYTHONPATH=. python benchmarks/inference.py [--threads 2] [--models-dir resources/models]
        [--random-weights] [--slices 12 --frames 25 --size 256]
        [--precision float32 auto] [--runtime torch onnxruntime]

Runs on the CPU with ``--threads`` torch threads, and again on CUDA when present (autocast).
Every combination of ``--runtime`` (config ``inference.runtime``) and ``--precision`` that can run
is measured side by side (ONNX Runtime runs float32 only: its bfloat16 combination is skipped).
Timing is wall clock and CPU time of this process (the CPU time is the fairer figure on a shared
machine).  The exam is synthetic noise of a typical MESA size (timing does not depend on content); with
``--random-weights`` (or when shipped models are missing) untrained networks of the shipped
architectures are used.
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
from cmr_atlas.core.geometry import SlicePlane  # noqa: E402
from cmr_atlas.core.imagecache import ExamImages  # noqa: E402
from cmr_atlas.cine.inference import Models, infer_exam, load_models  # noqa: E402
from cmr_atlas.nets.preprocess import Grid  # noqa: E402
from cmr_atlas.nets.registry import ModelFileError  # noqa: E402
from cmr_atlas.nets.runtime import forward, inference_model, resolve_precision, resolve_runtime  # noqa: E402
from cmr_atlas.nets.unet import UNet  # noqa: E402


def fake_exam(slices: int, frames: int, size: int, spacing: float = 1.4) -> ExamImages:
    rng = np.random.default_rng(0)
    planes = [SlicePlane.centred(np.array([0, 0, 10.0 * s]), [1, 0, 0], [0, 1, 0], (spacing, spacing), (size, size))
              for s in range(slices)]
    lax_plane = SlicePlane.centred(np.zeros(3), [1, 0, 0], [0, 0, -1], (spacing, spacing), (size, size))
    sax = rng.normal(100, 30, (slices, frames, size, size)).astype(np.float32)
    lax = {v: rng.normal(100, 30, (frames, size, size)).astype(np.float32) for v in ("lax_2ch", "lax_4ch")}
    return ExamImages("BENCH", sax, planes, np.arange(frames) * 40.0, lax, {v: lax_plane for v in lax})


def random_models(device: torch.device, precision: str, runtime: str) -> Models:
    card = {"input": Grid(1.5, 128).to_dict()}
    torch.manual_seed(0)
    rt = resolve_runtime(runtime, device, precision)

    def net() -> torch.nn.Module:
        return inference_model(UNet(1, 4).to(device).eval(), 128, rt)

    return Models(net(), card, "heatmap", {m: (net(), card) for m in ("lax", "sax")}, device,
                  None if rt == "onnxruntime" else resolve_precision(precision, device), rt)


def bench(models: Models, exam: ExamImages, n_images: int, batch: int) -> None:
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
    t, c = time.perf_counter(), time.process_time()
    res = infer_exam(exam, models, ed_method=default("segmentation.ed_frame"),
                     absent_threshold=default("landmarks.absent_threshold"), batch=batch)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    n = exam.sax.shape[0] * exam.sax.shape[1]
    print(f"  whole exam: {dt:.2f} s ({dc:.2f} CPU s; {exam.sax.shape[0]} slices x {exam.sax.shape[1]} frames SAX "
          f"{exam.sax.shape[2]}x{exam.sax.shape[3]} + 2 LAX cines; {n} SAX images segmented, "
          f"{len(res.landmarks)} landmark rows)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--slices", type=int, default=12)
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--images", type=int, default=64, help="images per model for images/s")
    ap.add_argument("--batch", type=int, default=default("inference.batch"), help="config inference.batch")
    ap.add_argument("--precision", nargs="+", default=["float32", "auto"], choices=["auto", "float32", "bfloat16"],
                    help="precisions to measure side by side (config inference.precision)")
    ap.add_argument("--runtime", nargs="+", default=["torch", "onnxruntime"], choices=["auto", "torch", "onnxruntime"],
                    help="runtimes to measure side by side (config inference.runtime)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    exam = fake_exam(args.slices, args.frames, args.size)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
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
            bench(models, exam, args.images if dev.type == "cpu" else args.images * 8, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
