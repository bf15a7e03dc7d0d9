#!/usr/bin/env python
"""Train the small demo Vision Transformer shipped with tfxattr on the synthetic shapes set.

``Rescaling(1/255)``, a convolutional stem (two 3x3 stride-2 convolutions: 64x64 pixels -> 16x16
features), then a keras-hub ``ViTBackbone`` (2x2 patches of those features: an 8x8 grid of tokens, one
per 8x8 pixel cell, and a class token; 4 blocks, 4 heads, width 64) inside a ``ViTImageClassifier``
(class token -> logits): float pixels in [0, 255] -> logits over the five shapes. A plain ViT (8x8
pixel patches) was at 34% after 4 epochs here; the stem (Xiao et al. 2021, "Early convolutions help
transformers see better") makes a small ViT train in a few CPU minutes. Writes
``demo_vit.keras`` into ``--out`` (default: ``tfxattr/assets``). Seeded like
``scripts/train_demo_model.py`` (same data seeds, NumPy/Keras seeds, TF op determinism). Usage::

    python scripts/train_demo_vit.py                  # full run (a few minutes on 2 CPU cores)
    python scripts/train_demo_vit.py --out /tmp/x --epochs 1 --train-size 256
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
from train_demo_model import IMAGE_SIZE, REPO_ROOT, fit_and_score, parse_args, seeded_data  # noqa: E402

if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

# the architecture: a stem of two stride-2 convolutions (64x64 -> 16x16 features), 2x2 patches of them
# (an 8x8 grid of tokens, each an 8x8 pixel cell, + the class token), a small encoder
STEM_FILTERS = (32, 64)
PATCH_SIZE = 2
NUM_LAYERS = 4
NUM_HEADS = 4
HIDDEN_DIM = 64
MLP_DIM = 128
WEIGHT_DECAY = 0.05  # AdamW's usual ViT setting


def build_model(num_classes, image_size=IMAGE_SIZE):
    """[0,255] floats -> Rescaling -> conv stem -> keras-hub ViTImageClassifier (class token) -> logits."""
    import keras
    import keras_hub

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, filters in enumerate(STEM_FILTERS, start=1):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"stem{i}")(x)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=tuple(x.shape[1:]), patch_size=PATCH_SIZE, num_layers=NUM_LAYERS, num_heads=NUM_HEADS,
        hidden_dim=HIDDEN_DIM, mlp_dim=MLP_DIM, name="vit_backbone")
    classifier = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=num_classes, activation=None,
                                                     name="vit_classifier")
    return keras.Model(inputs, classifier(x), name="tfxattr_demo_vit")


def main(argv=None):
    args = parse_args(__doc__.split("\n\n")[0], argv, epochs=20, batch_size=64, lr=2e-3)
    train, val = seeded_data(args)
    import keras

    from tfxattr.synthetic import CLASS_NAMES

    model = build_model(len(CLASS_NAMES))
    steps = args.epochs * int(np.ceil(args.train_size / args.batch_size))
    warmup = max(1, min(300, steps // 5))  # transformers from scratch need a warm-up
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps - warmup), alpha=0.02, warmup_target=args.lr, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=WEIGHT_DECAY),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    _, acc = fit_and_score(model, train, val, args)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "demo_vit.keras")
    export = build_model(len(CLASS_NAMES))  # uncompiled: no optimizer state in the file
    export.set_weights(model.get_weights())
    export.save(path)
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")
    return acc


if __name__ == "__main__":
    main()
