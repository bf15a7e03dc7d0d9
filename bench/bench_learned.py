"""Learn to Rank benchmark (issue 13): explanation seconds per image of ``learned`` (one forward pass of a
trained explainer) vs ``ig`` and ``ig+idgi`` at 200 steps, on the demo model and on MobileNetV2 (224,
weights=None); the demo explainer's training time (from its assets/demo_explainer.json); and the demo
evaluation rows of learned, ig and ig+idgi (the README's benchmark command with these methods and deletion).

Timings: ``--images`` images per explain call, batch_size=32, median of --repeats runs, the methods
interleaved in one process (robust to load). The MobileNetV2 explainer is the default one (a frozen copy of
its features + decoder) trained for ``--mobilenet-steps`` steps on generated 224-pixel images, only to time
it (the time of one forward pass does not depend on how long it was trained).

    python bench/bench_learned.py                                   # writes bench/results_learned.md
    python bench/bench_learned.py --repeats 1 --mobilenet-steps 5 --eval-images 20
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchlib import build, machine, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 200
BATCH = 32
METHODS = (("learned", {}), ("ig", {"steps": STEPS}), ("ig+idgi", {"steps": STEPS}))


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each function, the functions run in turn ``repeats`` times after a warm-up each."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def time_demo(images: int, repeats: int) -> dict:
    import tfxattr
    from tfxattr.demo import load_demo_model, make_demo_data

    model = load_demo_model()
    x = make_demo_data(images, seed=4242)["images"]
    fns = {name: (lambda n=name, o=opts: tfxattr.explain(model, x, n, batch_size=BATCH, progress=False, **o))
           for name, opts in METHODS}
    return {k: v / images for k, v in interleaved(fns, repeats).items()}


def time_mobilenet(images: int, repeats: int, steps: int) -> tuple:
    import tfxattr
    from tfxattr.learn import train_explainer
    from tfxattr.models import as_model
    from tfxattr.synthetic import make_shapes

    model, spec = build("mobilenet_v2")
    adapter = as_model(model, preprocess=spec.preprocess, batch_size=BATCH)
    data = make_shapes(16, size=224, seed=7)
    t = time.perf_counter()
    explainer = train_explainer(adapter, data["images"], steps=steps, images_per_step=1, second_target=False,
                                batch_size=BATCH, progress=False, checkpoint_every=max(steps, 1))
    train_seconds = time.perf_counter() - t
    x = make_shapes(images, size=224, seed=8)["images"]
    opts = {"learned": {"explainer": explainer}, "ig": {"steps": STEPS}, "ig+idgi": {"steps": STEPS}}
    fns = {name: (lambda n=name: tfxattr.explain(model, x, n, batch_size=BATCH, preprocess=spec.preprocess,
                                                 progress=False, **opts[n])) for name, _ in METHODS}
    return {k: v / images for k, v in interleaved(fns, repeats).items()}, train_seconds


def evaluate_demo(n_images: int, out: str) -> list:
    """The README's demo benchmark for learned, ig, ig+idgi (CLI), plus deletion; returns its summary table."""
    cmd = ["tfxattr", "eval", "--data", f"shapes:{n_images}", "--models", "demo", "--correct-only",
           "--methods", "learned", f"ig:steps={STEPS}", f"ig+idgi:steps={STEPS}",
           "--metrics", "sic_aic_idgi", "insertion", "deletion", "localization", "--out", out]
    subprocess.run(cmd, check=True)
    with open(os.path.join(out, "report.md")) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model | method |"))  # the summary table
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [" ".join(cmd), ""] + lines[start:end]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mobilenet-steps", type=int, default=300)
    parser.add_argument("--eval-images", type=int, default=100)
    parser.add_argument("--eval-out", default="runs/learned_benchmark")
    parser.add_argument("--out", default=os.path.join(HERE, "results_learned.md"))
    args = parser.parse_args()

    from tfxattr.learn.explainer import DEMO_EXPLAINER_INFO

    demo = time_demo(args.images, args.repeats)
    mobile, mobile_train = time_mobilenet(args.images, args.repeats, args.mobilenet_steps)
    with open(DEMO_EXPLAINER_INFO) as f:
        info = json.load(f)
    load = os.getloadavg()
    lines = ["# Learn to Rank: learned explainer vs IG", "", machine(),
             f"Load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine)",
             "",
             f"Seconds per image ({args.images} images per call, batch_size={BATCH}, median of {args.repeats} "
             "interleaved runs):", "",
             "| model | learned | ig (200 steps) | ig+idgi (200 steps) | ig / learned |", "|---|---|---|---|---|"]
    for name, t in (("demo (64x64)", demo), ("MobileNetV2 (224, weights=None)", mobile)):
        lines.append(f"| {name} | {t['learned']:.4f} | {t['ig']:.3f} | {t['ig+idgi']:.3f} | "
                     f"{t['ig'] / t['learned']:.0f}x |")
    lines += ["", f"Demo explainer training (scripts/train_demo_explainer.py, {info['steps']} steps of "
              f"{info['images_per_step']} images): {info['training_seconds']:.0f} s.",
              f"MobileNetV2 explainer trained for timing only: {args.mobilenet_steps} steps of 1 image in "
              f"{mobile_train:.0f} s (including tracing).", ""]
    data = {"demo": demo, "mobilenet_v2": mobile, "mobilenet_train_seconds": mobile_train,
            "mobilenet_steps": args.mobilenet_steps, "demo_training": info}
    if args.eval_images:
        lines += ["Demo evaluation:", ""] + evaluate_demo(args.eval_images, args.eval_out)
    write_results(args.out, lines, data)


if __name__ == "__main__":
    main()
