#!/usr/bin/env python
"""Train the Learn to Rank explainer shipped for the demo model (``explainer="demo"``).

Writes into ``--out`` (default: ``tfxattr/assets``):

* ``demo_explainer.keras`` - the default explainer (a frozen copy of the demo model's features plus a
                             small decoder) trained by :func:`tfxattr.learn.train_explainer`;
* ``demo_explainer.json``  - the demo model's weight fingerprint (``explainer="demo"`` refuses any other
                             model), the settings, the training time and the validation log.

Generated shapes images (``--data-seed``; the demo model was trained on seeds 12345 and 54321, the tests
hold out other seeds). Scaled for a CPU: one class per image (the prediction; ``--both-targets`` adds the
authors' second class, the label where the prediction is wrong, else the runner-up), 8 images per step,
peak learning rate 2e-3. Seeded and with TensorFlow op determinism. Usage::

    python scripts/train_demo_explainer.py                 # a few minutes on 2 idle CPU cores
    python scripts/train_demo_explainer.py --out /tmp/x --steps 20
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

DATA_SEED = 2026  # not a seed the demo model saw, nor one the tests evaluate on
DEFAULT_OUT = os.path.join(REPO_ROOT, "tfxattr", "assets")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--train-size", type=int, default=400, help="generated images (10%% held out for validation)")
    parser.add_argument("--images-per-step", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per model call")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--both-targets", action="store_true",
                        help="also explain a second class per image (the authors' default; twice the cost per step)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=DATA_SEED)
    args = parser.parse_args(argv)
    for name in ("steps", "train_size", "images_per_step", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    import keras
    import tensorflow as tf

    from tfxattr.demo import load_demo_model, make_demo_data
    from tfxattr.learn import train_explainer
    from tfxattr.learn.explainer import weights_fingerprint

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    model = load_demo_model()
    data = make_demo_data(args.train_size, seed=args.data_seed)
    with tempfile.TemporaryDirectory() as ckpt:
        t0 = time.time()
        explainer = train_explainer(model, data["images"], data["labels"], steps=args.steps,
                                    batch_size=args.batch_size, images_per_step=args.images_per_step,
                                    seed=args.seed, progress=True, checkpoint_dir=ckpt, learning_rate=args.lr,
                                    second_target=args.both_targets)
        seconds = time.time() - t0
        with open(os.path.join(ckpt, "log.json")) as f:
            log = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "demo_explainer.keras")
    explainer.save(path)
    info = {"model_fingerprint": weights_fingerprint(model), "steps": args.steps, "train_size": args.train_size,
            "images_per_step": args.images_per_step,
            "learning_rate": args.lr, "both_targets": args.both_targets, "seed": args.seed, "data_seed": args.data_seed,
            "training_seconds": round(seconds, 1),
            "validation": [(e["step"], e["validation"]) for e in log if "validation" in e]}
    with open(os.path.join(args.out, "demo_explainer.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"training time: {seconds:.1f}s; validation (deletion - insertion) by step: {info['validation']}")
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
