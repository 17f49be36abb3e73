"""Frames per second of the world renderer on one core (clip sampling + rendering + ground truth).

    taskset -c 0 python -m benchmarks.world_bench [--size 128] [--clips 60]

Prints a Markdown table (per character count and overall); numbers go in docs/WORLD.md.
"""

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

cv2.setNumThreads(1)

from pipelines.world import World  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--clips", type=int, default=60, help="clips per character count")
    ap.add_argument("--frames", type=int, default=16)
    args = ap.parse_args()
    world = World(0, size=args.size, frames=args.frames)
    for i in range(3):
        world.clip(i)                                # warm caches (backgrounds, texture bank)
    rows, total_f, total_t = [], 0, 0.0
    for n in range(1, 6):
        times = []
        for i in range(args.clips):
            t = time.perf_counter()
            world.clip(1000 * n + i, n_characters=n)
            times.append(time.perf_counter() - t)
        fps = args.frames / np.median(times)
        rows.append((n, fps))
        total_f += args.frames * args.clips
        total_t += sum(times)
    print(f"world renderer, {args.size}×{args.size}, {args.frames}-frame clips, one core "
          f"({platform.processor() or platform.machine()}, cv2 threads = {cv2.getNumThreads()})\n")
    print("| characters | frames/s (median clip) |\n|---|---|")
    for n, fps in rows:
        print(f"| {n} | {fps:.0f} |")
    print(f"| all (mean over {5 * args.clips} clips) | {total_f / total_t:.0f} |")


if __name__ == "__main__":
    main()
