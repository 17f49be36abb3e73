"""Speed, memory and FLOPs of one generation with the embedded model: 16 frames at 128×128, 20 DDIM steps with
classifier-free guidance (assets/scenes/pip-dora-swap.json), on this machine's CPU.

    python -m benchmarks.generate_bench [--runs 7] [--threads 2] [--model PATH]

Sections: end-to-end time (median of --runs after a warm-up) with a per-stage breakdown; peak resident
memory of a fresh process that loads the model and generates once; FLOPs of one generation
(``torch.utils.flop_counter``, with the CPU flash-attention kernel counted) against this CPU's measured
matmul rate; the cost of encoding the reference every step instead of once; the cost of the temporal
layers by placement. Prints Markdown; the numbers go in docs/PERFORMANCE.md. Runs alternate between
variants so a busy neighbour slows them alike; quote medians. On a machine shared with other work, wall
time says more about the neighbours than about the model: ``--threads 1 --clock cpu`` measures the
single-core compute instead (CPU seconds do not count time spent waiting for a core).

    python -m benchmarks.generate_bench --threads 1 --clock cpu
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import torch

SCENE = "assets/scenes/pip-dora-swap.json"
CLOCK = time.perf_counter               # --clock cpu: process CPU time, for a machine shared with other work


def load(model):
    from pipelines.mix import load_pipeline
    return load_pipeline(model)


def scene(steps=None):
    from pipelines.scene import Scene
    sc = Scene.load(SCENE)
    if steps:
        sc.sampler = dict(sc.sampler, steps=steps)
    return sc


CPU_TIMES: list[float] = []            # process CPU seconds of every generate() call (all threads)


def generate(pipe, sc, **kw):
    t, c = CLOCK(), time.process_time()
    out = pipe(sc, **kw)
    CPU_TIMES.append(time.process_time() - c)
    return CLOCK() - t, out


class StageTimer:
    """Wall time spent inside chosen modules (outermost call only)."""

    def __init__(self, pipe):
        self.total = defaultdict(float)
        self.calls = defaultdict(int)
        self._handles = []
        stages = {"denoising UNet": pipe.unet, "ReferenceNet": pipe.reference_net, "VAE encode": pipe.vae.encoder,
                  "VAE decode": pipe.vae.decoder, "pose guider": pipe.pose_guider,
                  "context encoder": pipe.context_encoder}
        if pipe.reference_guider is not None:
            stages["reference guider"] = pipe.reference_guider
        for name, m in stages.items():
            self._handles.append(m.register_forward_pre_hook(self._start(name)))
            self._handles.append(m.register_forward_hook(self._stop(name)))
        self._t0 = {}

    def _start(self, name):
        def f(m, args):
            self._t0[name] = CLOCK()
        return f

    def _stop(self, name):
        def f(m, args, out):
            self.total[name] += CLOCK() - self._t0[name]
            self.calls[name] += 1
        return f

    def remove(self):
        for h in self._handles:
            h.remove()


def sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_flops(pipe, sc) -> tuple[int, dict]:
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten
    with FlopCounterMode(display=False, custom_mapping={
            aten._scaled_dot_product_flash_attention_for_cpu: sdpa_cpu_flops}) as counter:
        pipe(sc)
    per_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()
                  if k.count(".") == 0 and k != "Global"}
    return counter.get_total_flops(), per_module


def matmul_rate(n: int = 1024, repeats: int = 30) -> float:
    """Median fp32 GFLOP/s of an n×n @ n×n matmul with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    ts = []
    for _ in range(repeats):
        t = CLOCK()
        a @ b
        ts.append(CLOCK() - t)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


def peak_memory(model, threads, steps) -> float:
    """Peak RSS (MiB) of a fresh process: import, load the model, generate once."""
    code = (f"import resource, torch; torch.set_num_threads({threads});"
            "from benchmarks.generate_bench import load, scene;"
            f"p = load({model!r}); p(scene({steps!r}));"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def reference_every_step(pipe):
    """A callback that re-runs the ReferenceNet (and drops the cached reference keys/values) after every
    step: the cost AnimateAnyone-style pipelines pay when they encode the reference inside the loop."""
    den = pipe.denoiser
    seen = {}
    original = den.encode_reference

    def remember(*args, **kw):
        seen["args"], seen["kw"] = args, kw
        return original(*args, **kw)

    den.encode_reference = remember

    def callback(p, i, t, tensors):
        original(*seen["args"], **seen["kw"])
        den.state.clear_cache()
        return {}

    def restore():
        den.encode_reference = original
    return callback, restore


def temporal_costs(threads, runs) -> dict:
    """UNet forward (32 samples = 16 frames × CFG) with motion modules placed as the tiny model does, as
    UNetMotionModel would (every layer), and without temporal layers."""
    from diffusers import MotionAdapter
    from pipelines.models import TINY, build_components
    from pipelines.models.temporal import TemporalHooks
    c = build_components(TINY)
    unet = c["unet"]
    x = torch.randn(32, 4, 32, 32)
    ctx = torch.randn(32, 8, TINY.cross_attention_dim)
    variants = {"none": None, "tiny (0, 1, 1)": c["motion_adapter"],
                "every layer (1, 1, 1)": MotionAdapter(block_out_channels=TINY.block_out_channels,
                                                       motion_layers_per_block=1,
                                                       motion_num_attention_heads=TINY.motion_heads,
                                                       motion_norm_num_groups=TINY.norm_num_groups,
                                                       use_motion_mid_block=True).eval()}
    times = defaultdict(list)
    with torch.no_grad():
        for _ in range(runs):
            for name, adapter in variants.items():
                hooks = TemporalHooks(unet, adapter) if adapter is not None else None
                if hooks:
                    hooks.num_frames = 16
                unet(x, 500, encoder_hidden_states=ctx)
                t = CLOCK()
                unet(x, 500, encoder_hidden_states=ctx)
                times[name].append(CLOCK() - t)
                if hooks:
                    hooks.remove()
    params = {name: sum(p.numel() for p in a.parameters()) if a is not None else 0 for name, a in variants.items()}
    return {name: (statistics.median(v), params[name]) for name, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None)
    ap.add_argument("--steps", type=int, default=None, help="override the scene's 20 steps (smoke runs)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: time with process CPU seconds (use with --threads 1 while others load the machine)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["memory", "flops", "reference", "temporal", "bf16"])
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    pipe = load(args.model)
    sc = scene(args.steps)
    report = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "clock": args.clock}
    params = sum(p.numel() for m in pipe.components.values() if isinstance(m, torch.nn.Module) for p in m.parameters())
    print(f"# generate_bench — {sc.frames} frames {sc.width}×{sc.height}, {sc.sampler['steps']} {sc.sampler['scheduler']} "
          f"steps, CFG {sc.sampler['guidance_scale']}, model {params / 1e6:.2f} M parameters ({pipe.mode}), "
          f"{report['threads']} threads, torch {torch.__version__}, {args.clock} clock\n")

    generate(pipe, sc)                                   # warm-up (allocator, oneDNN primitives)
    callback, restore = reference_every_step(pipe)
    once, every, cpu = [], [], []
    for _ in range(args.runs):
        once.append(generate(pipe, sc)[0])
        cpu.append(CPU_TIMES[-1])
        if "reference" not in args.skip:
            every.append(generate(pipe, sc, callback_on_step_end=callback)[0])
    restore()
    timer = StageTimer(pipe)
    total, _ = generate(pipe, sc)
    timer.remove()
    med = statistics.median(once)
    report["end_to_end_s"] = {"median": med, "min": min(once), "max": max(once), "runs": once,
                              "cpu_median": statistics.median(cpu)}
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[0]
    report["load_average"] = float(loadavg)
    print(f"## End to end\n\nmedian {med:.2f} s (min {min(once):.2f}, max {max(once):.2f}, {args.runs} runs); "
          f"process CPU time {statistics.median(cpu):.2f} s per run; load average at the end {loadavg}\n")
    print("| stage | calls | seconds (one run) | share |\n|---|---|---|---|")
    rest = total
    for name, secs in sorted(timer.total.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {timer.calls[name]} | {secs:.2f} | {secs / total:.0%} |")
        rest -= secs
    print(f"| guidance drawing, sheet, scheduler, other | – | {rest:.2f} | {rest / total:.0%} |\n")
    report["stages_s"] = dict(timer.total, other=rest)

    if "reference" not in args.skip:
        med_every = statistics.median(every)
        report["reference_every_step_s"] = med_every
        print(f"## Reference once vs every step\n\nonce: {med:.2f} s, every step: {med_every:.2f} s → "
              f"encoding once is {med_every / med:.2f}× faster ({med_every - med:.2f} s saved)\n")

    if "flops" not in args.skip:
        flops, per_module = count_flops(pipe, sc)
        rate = matmul_rate()
        floor = flops / (rate * 1e9)
        report.update(flops=flops, flops_per_module=per_module, matmul_gflops=rate, floor_s=floor)
        print(f"## FLOPs\n\none generation: {flops / 1e9:.1f} GFLOP "
              + "(" + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in sorted(per_module.items(), key=lambda kv: -kv[1]))
              + ")\n")
        print(f"matmul rate (1024² fp32, {report['threads']} threads): {rate:.1f} GFLOP/s → floor {floor:.2f} s; "
              f"the median run is {med / floor:.1f}× the floor ({flops / med / 1e9:.1f} GFLOP/s achieved)\n")

    if "bf16" not in args.skip:
        fp32 = generate(pipe, sc)[1].frames.astype(float)
        times = []
        for _ in range(max(3, args.runs // 2)):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                secs, out = generate(pipe, sc)
            times.append(secs)
        mse = ((out.frames.astype(float) - fp32) ** 2).mean()
        psnr = 10 * math.log10(255 ** 2 / max(mse, 1e-12))
        report["bf16_autocast_s"], report["bf16_psnr_vs_fp32_db"] = statistics.median(times), psnr
        print(f"## bf16 autocast (opt-in: `with torch.autocast('cpu', dtype=torch.bfloat16): pipe(scene)`)\n\n"
              f"median {statistics.median(times):.2f} s ({med / statistics.median(times):.2f}× fp32); frames vs fp32: "
              f"PSNR {psnr:.1f} dB\n")

    if "memory" not in args.skip:
        rss = peak_memory(args.model, args.threads, args.steps)
        report["peak_rss_mib"] = rss
        print(f"## Memory\n\npeak resident memory of a fresh process (load + one generation): {rss:.0f} MiB\n")

    if "temporal" not in args.skip:
        costs = temporal_costs(args.threads, max(3, args.runs))
        report["temporal"] = costs
        print("## Temporal layers (UNet forward, 16 frames × CFG)\n\n| motion modules | parameters | s / forward |\n"
              "|---|---|---|")
        for name, (secs, n) in costs.items():
            print(f"| {name} | {n / 1e6:.2f} M | {secs:.3f} |")
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
