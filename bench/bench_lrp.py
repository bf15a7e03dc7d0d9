"""LRP and T-Attr benchmark (issue 23): seconds per image on the demo models, beside the plain gradient.

The demo CNN and the demo ViT (64x64), ``--images`` images explained together (batch_size=32), median of
``--repeats`` runs after one warm-up run per method that pays for tracing; ``--apps`` adds Keras applications
(weights=None, one image at native size) and ``--vit-b16`` keras-hub ViT-B/16 (random weights, 224).

    python bench/bench_lrp.py                                   # writes bench/results_lrp.md
    python bench/bench_lrp.py --apps resnet50v2 --vit-b16
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(fn, repeats):
    fn()  # warm-up: tracing
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--apps", nargs="*", default=[])
    ap.add_argument("--vit-b16", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results_lrp.md"))
    args = ap.parse_args()

    import keras

    import tfxattr
    from tfxattr.demo import load_demo_model, load_demo_vit

    rng = np.random.default_rng(0)
    rows = []
    cases = [("demo CNN (64x64)", load_demo_model, ("gradient", "lrp", "lrp:epsilon_plus_flat"), args.images, None),
             ("demo ViT (64x64)", load_demo_vit, ("gradient", "gae", "t_attr"), args.images, None)]
    for name in args.apps:
        import keras_apps
        spec = keras_apps.get(name)
        cases.append((f"{spec.display_name} (weights=None)", lambda n=name: keras_apps.build(n, weights=None),
                      ("gradient", "lrp"), 1, spec.preprocess))
    if args.vit_b16:
        def vit_b16():
            import keras_hub
            backbone = keras_hub.models.ViTBackbone(image_shape=(224, 224, 3), patch_size=16, num_layers=12,
                                                    num_heads=12, hidden_dim=768, mlp_dim=3072)
            return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=1000, activation=None)
        cases.append(("ViT-B/16 (random weights)", vit_b16, ("gradient", "gae", "t_attr"), 1, None))
    for label, build, methods, n, preprocess in cases:
        keras.backend.clear_session()
        model = build()
        h, w = model.input_shape[1:3]
        images = rng.uniform(0, 255, (n, h, w, 3)).astype(np.float32)
        for method in methods:
            options = {"preprocess": preprocess} if preprocess is not None else {}
            if method.startswith("lrp:"):
                method, options = "lrp", {**options, "composite": method[4:]}
            seconds = timed(lambda: tfxattr.explain(model, images, method, targets=1, batch_size=32, **options),
                            args.repeats)
            shown = method + (f" ({options['composite']})" if "composite" in options else "")
            rows.append((label, shown, seconds / n))
            print(label, shown, f"{seconds / n:.3f} s/image", flush=True)
    with open(args.out, "w") as f:
        f.write("# LRP and T-Attr: seconds per image\n\n")
        f.write(f"`python bench/bench_lrp.py {' '.join(sys.argv[1:])}` on {platform.machine()}, "
                f"{os.cpu_count()} cores (shared with other jobs: compare within a table, not across runs), "
                f"TensorFlow CPU; {args.images} images per call for the demo models, batch_size=32, median of "
                f"{args.repeats} runs after a warm-up.\n\n| model | method | s / image |\n|---|---|---|\n")
        for label, method, s in rows:
            f.write(f"| {label} | {method} | {s:.3f} |\n")


if __name__ == "__main__":
    main()
