#!/usr/bin/env python
"""Train the small demo CNN shipped with tfxattr on the synthetic shapes set.

Writes, into ``--out`` (default: ``tfxattr/assets``):

* ``demo_model.keras``     - the trained model (float pixels in [0, 255] -> logits);
* ``demo_image.png``       - one held-out 64x64 image the model classifies
                             correctly with high confidence;
* ``demo_image_mask.png``  - its object mask (0 / 255).

Everything is seeded (NumPy generator, ``keras.utils.set_random_seed`` and
TensorFlow op determinism), so re-running gives the same model on the same
machine/TF build.  Usage::

    python scripts/train_demo_model.py                    # full run (~2-3 min on 2 idle CPU cores)
    python scripts/train_demo_model.py --out /tmp/x --epochs 1 --train-size 256
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

IMAGE_SIZE = 64
TRAIN_SEED = 12345  # data seed for training images
VAL_SEED = 54321  # data seed for the held-out evaluation images
MODEL_SEED = 0
DEFAULT_OUT = os.path.join(REPO_ROOT, "tfxattr", "assets")


def build_model(num_classes, image_size=IMAGE_SIZE):
    """Functional CNN: [0,255] floats -> logits; ``last_conv`` is the final feature map."""
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, filters in enumerate((16, 32, 64), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    # The only path to the output goes through this 4-D (8x8xC) feature map.
    x = layers.Conv2D(96, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="tfxattr_demo_cnn")


def _dataset(images, labels, batch_size, shuffle_seed=None):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(2)


def _save_png(array, path):
    from PIL import Image

    Image.fromarray(array).save(path)


def parse_args(description, argv, epochs, batch_size, lr):
    """The training flags every demo-model script takes, with its own defaults; bad sizes fail fast."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: tfxattr/assets)")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default: {epochs})")
    parser.add_argument("--train-size", type=int, default=12000, help="number of training images (default: 12000)")
    parser.add_argument("--val-size", type=int, default=2000, help="number of held-out images (default: 2000)")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default: {lr:g})")
    args = parser.parse_args(argv)
    for name in ("epochs", "train_size", "val_size", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def seeded_data(args):
    """Seed NumPy, Keras and TF (op determinism), then generate the training and held-out shapes."""
    # Imported only now so that bad flags fail fast (tfxattr imports TensorFlow).
    import keras
    import tensorflow as tf

    from tfxattr.synthetic import make_shapes

    keras.utils.set_random_seed(MODEL_SEED)
    tf.config.experimental.enable_op_determinism()

    t0 = time.time()
    train = make_shapes(args.train_size, size=IMAGE_SIZE, seed=TRAIN_SEED)
    val = make_shapes(args.val_size, size=IMAGE_SIZE, seed=VAL_SEED)
    print(f"generated {args.train_size} train / {args.val_size} held-out images in {time.time() - t0:.1f}s", flush=True)
    return train, val


def fit_and_score(model, train, val, args):
    """Fit ``model`` on the seeded, shuffled training set; print and return the held-out logits and
    accuracy."""
    t1 = time.time()
    model.fit(_dataset(train["images"], train["labels"], args.batch_size, shuffle_seed=MODEL_SEED),
              epochs=args.epochs, shuffle=False, verbose=2)  # shuffle=False: the dataset is already shuffled
    train_time = time.time() - t1
    logits = model.predict(_dataset(val["images"], val["labels"], 256), verbose=0)
    acc = float(np.mean(logits.argmax(axis=1) == val["labels"]))
    print(f"training time: {train_time:.1f}s")
    print(f"held-out accuracy: {acc:.4f} ({args.val_size} images, seed {VAL_SEED})")
    return logits, acc


def main(argv=None):
    args = parse_args(__doc__.split("\n\n")[0], argv, epochs=6, batch_size=32, lr=3e-3)
    train, val = seeded_data(args)
    import keras

    from tfxattr.synthetic import CLASS_NAMES

    model = build_model(len(CLASS_NAMES))
    steps = args.epochs * int(np.ceil(args.train_size / args.batch_size))
    # Linear warm-up then cosine decay: the warm-up matters, training from
    # scratch at the peak rate can stall at chance level.
    warmup = max(1, min(300, steps // 4))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps - warmup), alpha=0.02, warmup_target=args.lr, warmup_steps=warmup
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    logits, acc = fit_and_score(model, train, val, args)
    pred = logits.argmax(axis=1)
    for k, name in enumerate(CLASS_NAMES):
        sel = val["labels"] == k
        print(f"  {name:>8s}: {np.mean(pred[sel] == k):.4f}")

    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, "demo_model.keras")
    # Save an uncompiled copy: no optimizer state (smaller file, and users
    # only need the forward pass / gradients).
    export = build_model(len(CLASS_NAMES))
    export.set_weights(model.get_weights())
    export.save(model_path)

    # Demo image: the most confidently, correctly classified held-out image
    # whose object is of medium size (so it is neither trivial nor tiny).
    prob = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=1))
    conf = prob[np.arange(len(pred)), val["labels"]]
    area = val["masks"].mean(axis=(1, 2))
    ok = (pred == val["labels"]) & (area > 0.12) & (area < 0.22)
    if not ok.any():
        ok = pred == val["labels"]
    if not ok.any():
        ok = np.ones_like(ok)
    idx = int(np.flatnonzero(ok)[np.argmax(conf[ok])])
    _save_png(val["images"][idx], os.path.join(args.out, "demo_image.png"))
    _save_png(val["masks"][idx].astype(np.uint8) * 255, os.path.join(args.out, "demo_image_mask.png"))
    print(
        f"demo image: held-out #{idx}, class {CLASS_NAMES[val['labels'][idx]]!r}, "
        f"p={conf[idx]:.4f}, object area {area[idx]:.1%}"
    )
    print(f"wrote {model_path} ({os.path.getsize(model_path) / 1024:.0f} KiB) and demo_image[_mask].png")
    return acc


if __name__ == "__main__":
    main()
