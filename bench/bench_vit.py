"""ViT benchmark (issue 12): seconds per image of the attention methods and IG on ViT-B/16 at 224.

keras-hub ViT-B/16 (12 blocks of 12 heads, width 768) with random weights (``vit_b16``, weights none),
``--images`` images explained together, batch_size=32, median of ``--repeats`` runs in one process after
one warm-up run per method that pays for tracing; the cases run interleaved, so a ratio within a repeat sees the
same machine load.

    python bench/bench_vit.py                       # writes bench/results_vit.md
    python bench/bench_vit.py --images 2 --repeats 1
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchlib import machine, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 32
CASES = (("attention_rollout", {}), ("gae", {}), ("gradient_rollout", {}), ("iia_vit (n=10, last block)", {}),
         ("iia2_vit (n=10: input x last block, 100 passes)", {}), ("ig (20 steps)", {"steps": 20}),
         ("ig (200 steps)", {"steps": 200}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], help="method names to leave out (e.g. iia2_vit)")
    ap.add_argument("--out", default=os.path.join(HERE, "results_vit.md"))
    args = ap.parse_args()

    import tfxattr

    adapter = tfxattr.as_model("vit_b16", weights="none", batch_size=BATCH)
    images = np.random.default_rng(0).uniform(0, 255, (args.images, 224, 224, 3)).astype(np.float32)
    cases = [(label, label.split(" ")[0], opts) for label, opts in CASES if label.split(" ")[0] not in args.skip]

    def run(method, opts):
        tfxattr.explain(adapter, images, method, targets=[1] * len(images), batch_size=BATCH, progress=False, **opts)

    warmed = set()
    for _, method, opts in cases:  # warm-up: one run per method pays for its tracing (ig 200 reuses ig 20's)
        if method not in warmed:
            run(method, opts)
            warmed.add(method)
    times = {label: [] for label, _, _ in cases}
    for _ in range(args.repeats):
        for label, method, opts in cases:
            t = time.perf_counter()
            run(method, opts)
            times[label].append((time.perf_counter() - t) / len(images))
            print(f"  {label:50s} {times[label][-1]:8.3f} s/image", flush=True)
    med = {label: statistics.median(v) for label, v in times.items()}
    load = os.getloadavg()
    lines = [f"# ViT benchmark ({time.strftime('%Y-%m-%d')})", "",
             f"{machine()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min; the machine is "
             f"shared). keras-hub ViT-B/16 at 224, random weights, {args.images} images per call, "
             f"batch_size={BATCH}, median of {args.repeats} interleaved runs after a warm-up.", "",
             "| method | s / image | x gae |", "|---|---|---|"]
    base = med.get("gae")
    for label, value in med.items():
        lines.append(f"| {label} | {value:.3f} | {value / base:.1f} |" if base else f"| {label} | {value:.3f} | – |")
    write_results(args.out, lines, {"seconds_per_image": med, "images": args.images, "repeats": args.repeats,
                                    "loadavg": load})


if __name__ == "__main__":
    main()
