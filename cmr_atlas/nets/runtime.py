"""Inference runtime shared by every pipeline's networks: the device, the numeric precision and
the batched forward pass (numpy images in, float32 CPU tensor out), in PyTorch or in ONNX Runtime.

Precision (config ``inference.precision``): ``float32``, ``bfloat16``, ``int8`` (the shipped int8
graphs of the cine U-Nets, :mod:`cmr_atlas.nets.quantize`, in ONNX Runtime on the CPU; networks
without one run as with ``auto``), or ``auto``: the int8 graphs where shipped, on a CPU with 8-bit
dot-product instructions (VNNI) and runtime ``auto`` (:func:`uses_int8`), else bfloat16 autocast
where the hardware computes it natively (CUDA with bf16 support, else float16 on CUDA; on the CPU
only where the processor has AVX-512 BF16 or AMX units, which oneDNN uses) and float32 elsewhere.
Measured on the quiet 2-core development CPU (AVX-512 BF16 and VNNI), the forward passes of a
legacy exam (252 SAX frames on the crop, 49 long-axis and 21 SAX landmark images;
``benchmarks/throughput.py`` prints this floor): int8 1.09 s on one thread, 0.80 s on two, against
bfloat16 autocast 1.52 and 1.07 s.  Bfloat16 autocast runs the shipped U-Nets about 4x faster than
float32 (``benchmarks/inference.py``).  The accuracy check of each is ``benchmarks/accuracy.py
--precision`` (figures in docs/models.md: both unchanged against float32 and bfloat16).

Runtime (config ``inference.runtime``): ``torch``, ``onnxruntime`` (the network exported to ONNX
in memory when it is loaded and run by ONNX Runtime's CPU provider in float32), or ``auto``:
PyTorch where it runs bfloat16 autocast (a CPU with native bf16 units and precision ``auto`` or
``bfloat16``; CUDA), ONNX Runtime on the CPU where PyTorch would compute float32 (no native bf16,
or precision ``float32``) and it is installed; a failed export or session falls back to PyTorch
with a warning.  Measured on the quiet 2-core development CPU (AVX-512 BF16), shipped networks, one
thread, batch 32 (``benchmarks/inference.py --threads 1 --precision auto --runtime torch
onnxruntime``, 2026-12-02): whole synthetic exam 2.78 s with PyTorch bfloat16 against 3.77 s with
ONNX Runtime float32 (seg_sax 7.9 vs 18.4 ms per image); ONNX Runtime float32 is faster than
PyTorch float32 and computes the same outputs to 1e-5.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cmr_atlas.core.tables import atomic_write_bytes

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "bfloat16", "int8")
RUNTIMES = ("auto", "torch", "onnxruntime")
_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


def channel_batch(x: np.ndarray) -> np.ndarray:
    """Network input ``(B, C, h, w)`` float32, contiguous: single-channel images ``(B, h, w)`` get
    their channel axis; images that carry channels (neighbouring slices) stay as they are."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x[:, None] if x.ndim == 3 else x


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda`` (an error without CUDA)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda requested but CUDA is not available")
    return torch.device(name)


@lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True where the CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX) and oneDNN can use
    it; without those units oneDNN emulates bf16, which is slower than float32."""
    try:
        flags = Path(cpuinfo).read_text()
    except OSError:  # not Linux: no cheap reliable probe, stay with float32
        return False
    native = " avx512_bf16" in flags or " amx_bf16" in flags
    return native and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``name`` on ``device`` (None = plain float32)."""
    if name not in PRECISIONS:
        raise ValueError(f"inference.precision must be one of {PRECISIONS}, not {name!r}")
    if name == "int8":  # networks without a shipped integer graph (nets.quantize) run as with auto
        if device.type != "cpu":
            raise ValueError("inference.precision: int8 runs on the CPU (ONNX Runtime); use auto on a GPU")
        name = "auto"
    if device.type == "cuda":
        if name == "float32":
            return None
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if name == "bfloat16":
            raise RuntimeError("inference.precision: bfloat16 requested but this GPU has no bf16 support")
        return torch.float16
    if name == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return _DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; plain float32 when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def fuse_conv_bn(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of an eval-mode ``model`` whose (transposed) convolutions followed by batch norm in
    an ``nn.Sequential`` carry the batch norm in their weights and bias (the norm becomes an
    identity): the same function up to rounding, one pass over the activations fewer per layer."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and isinstance(bn, torch.nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, torch.nn.ConvTranspose2d))
                seq[i + 1] = torch.nn.Identity()
    return model


def prepare_model(model: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of ``model``: eval mode, batch norm fused into the convolutions
    (:func:`fuse_conv_bn`), channels-last weights, which oneDNN's convolutions (CPU) and cuDNN's
    under autocast (GPU) run fastest on.  The shipped U-Net on this project's CPU (2 threads,
    bfloat16 autocast, batch 32): 5.6 ms per 128 x 128 image as loaded, 3.1 ms channels-last,
    2.5 ms fused and channels-last (``benchmarks/inference.py``)."""
    return fuse_conv_bn(model).to(memory_format=torch.channels_last)


def onnx_cache_dir() -> Path:
    """Where exported networks are kept between jobs: ``$XDG_CACHE_HOME/cmr-atlas/onnx`` (default
    ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cmr-atlas" / "onnx"


def cached_onnx_bytes(model: torch.nn.Module, size: int) -> bytes:
    """The ONNX graph of ``model`` on ``size`` x ``size`` inputs, exported once per machine (or
    shared home folder) and kept in :func:`onnx_cache_dir` under a hash of the architecture, the
    weights, the input size, the opset and the torch version: a job then skips the export (about
    1 CPU s per network with the exporter's import).  An unwritable cache only costs the export."""
    from cmr_atlas.nets.onnx_export import OPSET, dynamic_axes, onnx_bytes

    axes = sorted(dynamic_axes(model).items())  # a graph exported with other symbolic axes is another file
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}|{size}|{OPSET}|{torch.__version__}|{axes}"
                       .encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    path = onnx_cache_dir() / f"{h.hexdigest()[:40]}.onnx"
    if path.is_file():
        return path.read_bytes()
    data = onnx_bytes(copy.deepcopy(model).eval().cpu(), size)
    try:
        atomic_write_bytes(path, data)  # concurrent jobs: each renames a complete file
    except OSError as e:
        log.info("ONNX cache %s not writable (%s); exporting in every job", path.parent, e)
    return data


_SHARED_ARENA: list[bool] = []  # registered in this process (ONNX Runtime's environment is global)


def _register_shared_arena(ort) -> None:
    if not _SHARED_ARENA:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
        _SHARED_ARENA.append(True)


# ONNX Runtime's CPU kernels run fastest on few images at a time, whose activations stay in the
# caches: one thread, shipped int8 graphs, ms per image in runs of 1-2 images against runs of 32:
# seg_sax on 96 x 96 crops 1.7 against 2.0, lm_heatmap_lax on 128 x 128 3.15 against 3.6-4.2; and
# the activations held at once shrink with the run
RUN_PIXELS = 2 * 128 * 128


class OnnxNet:
    """A network exported to ONNX in memory and run by ONNX Runtime's CPU provider in float32
    (graph optimisations on: batch norm and ReLU fused into the convolutions, blocked layouts),
    on ``threads`` intra-op threads; or, given ``graph``, that ONNX graph of it (the shipped int8
    one: :mod:`cmr_atlas.nets.quantize`)."""

    def __init__(self, model: torch.nn.Module, size: int, threads: int, graph: bytes | None = None):
        import onnxruntime as ort

        from cmr_atlas.nets.onnx_export import INPUT, OUTPUT

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # warnings about unused initialisers are noise here
        # no busy-waiting between operators: a shard job shares the cores with other jobs (the
        # workflow runs other stages beside inference), and spinning threads burn CPU they need
        # (seg_sax, 2 threads, shared machine: 8.9 CPU ms/image without spinning, 10.6 with)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # one memory arena for every network of the process: a session's own arena keeps its
        # largest activations (batch 32 of 128 x 128 x 16+ channels, about 400 MiB) for the job's
        # life, so three networks peaked at 1.2 GiB; shared, 0.4 GiB at the same speed (no arena
        # at all: 0.3 GiB but 1.4x the CPU time, from fresh pages at every batch)
        _register_shared_arena(ort)
        so.add_session_config_entry("session.use_env_allocators", "1")
        self.size, self._names = size, ([OUTPUT], INPUT)
        self.int8 = graph is not None
        self.session = ort.InferenceSession(graph if graph is not None else cached_onnx_bytes(model, size), so,
                                            providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs of a batch ``x (B, C, n, n)`` float32."""
        return self.session.run(self._names[0], {self._names[1]: x})[0]

    def run_batches(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Outputs of ``x (N, h, w)`` (or ``(N, C, h, w)``) float32 in runs of at most ``batch`` images and
        :data:`RUN_PIXELS` pixels, written by ONNX Runtime straight into one output array (no
        per-run arrays to concatenate)."""
        batch = max(1, min(int(batch), RUN_PIXELS // max(1, x.shape[-2] * x.shape[-1])))
        first = self.run(channel_batch(x[:batch]))
        out = np.empty((len(x), *first.shape[1:]), np.float32)
        out[:len(first)] = first
        binding = self.session.io_binding()
        for i in range(batch, len(x), batch):
            xb = channel_batch(x[i:i + batch])
            part = out[i:i + len(xb)]
            binding.bind_cpu_input(self._names[1], xb)
            binding.bind_output(self._names[0][0], "cpu", 0, np.float32, list(part.shape), part.ctypes.data)
            self.session.run_with_iobinding(binding)
        return out


def takes_any_size(model: torch.nn.Module | OnnxNet) -> bool:
    """Whether the runtime lets ``model`` run on inputs of another size than its grid's, so that
    a caller may run a fully convolutional network on a crop of the grid: PyTorch does (whether
    the network is fully convolutional is the caller's to know, from its card); an
    :class:`OnnxNet` only where its graph was exported with symbolic height and width."""
    if isinstance(model, OnnxNet):
        return all(isinstance(d, str) for d in model.session.get_inputs()[0].shape[2:])
    return True


def resolve_runtime(name: str, device: torch.device, precision: str) -> str:
    """``torch`` or ``onnxruntime`` for the config's ``inference.runtime`` ``name`` (see the module
    docstring); an explicit ``onnxruntime`` that cannot run here is an error."""
    if name not in RUNTIMES:
        raise ValueError(f"inference.runtime must be one of {RUNTIMES}, not {name!r}")
    if precision == "int8":
        # the shipped integer graphs run in ONNX Runtime whatever this says (load_net); the
        # runtime resolved here is that of the networks without one, as with precision auto
        resolve_precision(precision, device)
        if importlib.util.find_spec("onnxruntime") is None:
            raise RuntimeError("inference.precision: int8 requested but onnxruntime is not installed")
        precision = "auto"
    usable = device.type == "cpu" and precision != "bfloat16"
    if name == "onnxruntime":
        if not usable:
            raise ValueError("inference.runtime: onnxruntime runs on the CPU in float32 only "
                             f"(device {device.type}, precision {precision})")
        if importlib.util.find_spec("onnxruntime") is None:
            raise RuntimeError("inference.runtime: onnxruntime requested but it is not installed")
    if name == "auto":
        # bfloat16 autocast where the CPU computes it natively beats ONNX Runtime's float32 (module
        # docstring); ONNX Runtime where PyTorch would run float32
        native_bf16 = usable and resolve_precision(precision, device) is not None
        return ("onnxruntime" if usable and not native_bf16 and importlib.util.find_spec("onnxruntime") is not None
                else "torch")
    return name


def inference_model(model: torch.nn.Module, size: int, runtime: str, strict: bool = False,
                    graph: bytes | None = None) -> torch.nn.Module | OnnxNet:
    """The inference form of a loaded ``model`` whose inputs are ``size`` x ``size``: an
    :class:`OnnxNet` (``runtime`` onnxruntime, on torch's current number of threads; ``graph``: the
    ONNX graph to run instead of the float32 export) or :func:`prepare_model`'s copy.  A failed
    export or session falls back to PyTorch with a warning unless ``strict`` (an explicit
    ``runtime: onnxruntime``)."""
    if runtime == "onnxruntime":
        try:
            return OnnxNet(model, size, torch.get_num_threads(), graph)
        except Exception as e:  # noqa: BLE001 - any exporter/runtime failure: PyTorch computes the same
            if strict:
                raise
            log.warning("ONNX Runtime unusable (%s: %s); running the network in PyTorch", type(e).__name__, e)
    return prepare_model(model)


def forward(model: torch.nn.Module | OnnxNet, x: np.ndarray, device: torch.device, batch: int,
            dtype: torch.dtype | None) -> torch.Tensor:
    """Run ``x (N, n, n)`` (or ``(N, C, n, n)``: :func:`channel_batch`) through ``model`` in
    batches of ``batch`` images on
    ``device`` under :func:`autocast` to ``dtype`` (an :class:`OnnxNet` runs in float32 on the
    CPU); returns the float32 output on the CPU, contiguous (``torch.zeros(0)`` for no images).
    Inputs go in channels-last memory format (see :func:`prepare_model`)."""
    if isinstance(model, OnnxNet):
        return torch.from_numpy(model.run_batches(x, batch)) if len(x) else torch.zeros(0)
    outs = []
    with torch.inference_mode(), autocast(device, dtype):
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(channel_batch(x[i:i + batch]))
            xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            outs.append(model(xb).float().cpu())
    return torch.cat(outs).contiguous() if outs else torch.zeros(0)


@lru_cache(maxsize=1)
def cpu_has_int8_dot(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True where the CPU has 8-bit dot-product instructions (x86 AVX-512 VNNI or AVX-VNNI, ARM
    dotprod).  Without them the u8 x s8 products of x86 int8 kernels are summed in pairs into
    16 bits, which can saturate and cost accuracy (a known limit of pre-VNNI x86 CPUs)."""
    try:
        flags = Path(cpuinfo).read_text()
    except OSError:
        return False
    return any(f in flags for f in (" avx512_vnni", " avx_vnni", " asimddp"))


def uses_int8(precision: str, runtime: str, device: torch.device) -> bool:
    """Whether the shipped int8 graphs run (where a network has one): precision ``int8``, or ``auto``
    with runtime ``auto`` on a CPU with 8-bit dot-product instructions (:func:`cpu_has_int8_dot`;
    an explicit runtime asks for its float path)."""
    if precision == "int8":
        if device.type == "cpu" and not cpu_has_int8_dot():
            log.warning("inference.precision int8 on a CPU without 8-bit dot-product instructions "
                        "(VNNI): the int8 kernels may saturate; check the accuracy or use auto")
        return True
    return (precision == "auto" and runtime == "auto" and device.type == "cpu" and cpu_has_int8_dot()
            and importlib.util.find_spec("onnxruntime") is not None)


def load_net(name: str, models_dir: str | Path, device: torch.device, precision: str, runtime: str,
             strict: bool = False, runtime_setting: str = "auto") -> tuple[torch.nn.Module | OnnxNet, dict]:
    """``(inference form, card)`` of shipped network ``name``: its int8 graph in ONNX Runtime where
    :func:`uses_int8` (``precision`` and the config's ``runtime_setting``) and the models folder has a
    matching one (:func:`cmr_atlas.nets.quantize.int8_graph`), else :func:`inference_model` in
    ``runtime`` (already resolved: :func:`resolve_runtime`)."""
    from cmr_atlas.nets.quantize import int8_graph
    from cmr_atlas.nets.registry import card_grid, load_model

    model, card = load_model(name, models_dir, device)
    graph = int8_graph(name, models_dir, card) if uses_int8(precision, runtime_setting, device) else None
    if graph is not None:  # a graph ONNX Runtime cannot load fails only where int8 was asked for
        return inference_model(model, card_grid(card).size, "onnxruntime", strict=precision == "int8",
                               graph=graph), card
    return inference_model(model, card_grid(card).size, runtime, strict=strict), card
