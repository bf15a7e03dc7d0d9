"""Issue 14 benchmark: seconds per image of the new baselines on ResNet50V2 (weights=None, 224x224, batch 32).

One image, ``batch_size=32``, median of ``--repeats`` runs in one process after one warm-up run that pays
for tracing, interleaved with Grad-CAM and one batched forward pass (32 images) as yardsticks. The
perturbation methods cost one forward pass (of the whole model, or of the head for Ablation-CAM) per
perturbed row, so they run at reduced sizes here and the script also reports the cost at the default
sizes extrapolated linearly in rows (marked as such, not measured): Score-CAM 128 channels of 2,048
(``top_channels=128``), Occlusion with 16-pixel patches and stride (196 rows; the default 8/4 is 3,025), RISE with 256
masks (the default is 4,000).

    python bench/bench_baselines.py --repeats 1          # writes bench/results_baselines.md (keeps the peers section)
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxattr  # noqa: E402
from benchlib import build, machine, timings, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 32
CHANNELS = 2048  # ResNet50V2's last block (post_relu, 7 x 7 x 2048)
# label -> (method, options, rows measured, rows at the default options or None when already the default)
METHODS = {
    "gradcam": ("gradcam", {}, None, None),
    "layercam": ("layercam", {}, None, None),
    "xgradcam": ("xgradcam", {}, None, None),
    "liftcam": ("liftcam", {}, None, None),
    "fullgrad": ("fullgrad", {}, None, None),
    "ablationcam (2,048 head passes)": ("ablationcam", {}, None, None),
    "scorecam top_channels=128": ("scorecam", {"top_channels": 128}, 128, CHANNELS),
    "occlusion patch=16 stride=16": ("occlusion", {"patch": 16, "stride": 16}, 196, 55 * 55),
    "rise samples=256": ("rise", {"samples": 256}, 256, 4000),
}
BEGIN = "<!-- peers: begin -->"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--out", default=os.path.join(HERE, "results_baselines.md"))
    args = p.parse_args(argv)
    model, spec = build("resnet50v2")
    adapter = tfxattr.as_model(model, preprocess=spec.preprocess, batch_size=BATCH)
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    batch = tf.constant(np.repeat(image, BATCH, 0))
    forward = tf.function(lambda x: adapter._raw(x))
    target = int(adapter.scores(image).argmax())
    runs = {"forward pass, 32 images": lambda: forward(batch).numpy()}
    for label in args.methods:
        name, options, _, _ = METHODS[label]
        runs[label] = (lambda n=name, o=options: tfxattr.explain(adapter, image, n, targets=target, seed=0,
                                                                 progress=False, **o))
    for fn in runs.values():  # warm-up: tracing
        fn()
    times = {label: [] for label in runs}
    for _ in range(args.repeats):  # interleaved: every method sees the same load
        for label, fn in runs.items():
            times[label] += timings(fn, 1, warmup=False)
    medians = {label: float(np.median(t)) for label, t in times.items()}
    load = os.getloadavg()
    lines = ["# New baselines (issue 14): seconds per image", "",
             f"`python bench/bench_baselines.py --repeats {args.repeats}`; {machine()}; ResNet50V2 weights=None, "
             f"224x224, one image, batch_size={BATCH}; median of {args.repeats} interleaved runs after a warm-up. "
             f"Shared machine: load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end (2 cores), so "
             "absolute times are inflated; ratios to one image's share of a batched forward pass, measured in the "
             "same loop, are steadier.", "",
             "| method | seconds / image | in forward passes of one image | default options, extrapolated |",
             "|---|---|---|---|"]
    fwd = medians["forward pass, 32 images"] / BATCH  # one image's share of a batched forward pass
    for label, sec in medians.items():
        extra = ""
        if label in METHODS and METHODS[label][2]:
            rows, default = METHODS[label][2:]
            extra = f"~{sec * default / rows:.0f} s ({default:,} rows, linear in rows; not measured)"
        lines.append(f"| {label} | {sec:.2f} | {sec / fwd:.1f} | {extra} |")
    old = open(args.out).read() if os.path.exists(args.out) else ""
    if BEGIN in old:  # keep the agreement section written by compare_peers_baselines.py
        lines += ["", old[old.index(BEGIN):].rstrip("\n")]
    write_results(args.out, lines, {"seconds_per_image": medians, "repeats": args.repeats, "load": load})


if __name__ == "__main__":
    main()
