"""``train_explainer``: Learn to Rank's training loop (Schinagl et al. 2026, Sec. 3.2-3.4), scaled for a CPU.

Each step draws ``images_per_step`` training images, explains two classes per image (the top-1
prediction and, as the authors' ``prediction_and_ground_truth`` mode, the label when the prediction is
wrong, else the runner-up; without labels: the top-1 and the runner-up), draws a grid size and one of the
black / mean / blur references, and minimises

    soft deletion AUC + (1 - soft insertion AUC) + PEAK_WEIGHT * peak penalty

through the Gumbel-Sinkhorn soft sort (noise on, temperature annealed 1 -> 0.3), 16 mask fractions per
curve, cell borders softened by a Gaussian of 1 pixel. The peak penalty is the mean squared excess of the
map over its local 15 x 15 mean (it keeps the map from collapsing onto single pixels). AdamW (weight decay
1e-3), gradient norm clipped at 1, learning rate warmed up linearly over the first 6% of the steps from
1/25 of its peak, then cosine-decayed by 1e4. These are the authors' settings (``configs``/``config.py``
of github.com/dschinagl/AHA) except the scale: they train a DINOv3 + DPT explainer for an epoch of
ImageNet at 32 images per step with peak learning rate 3e-4; here a small decoder over the frozen target's
own features, a few hundred steps of a few images, peak learning rate 1e-3.

A held-out share of the images (``validation``) scores the explainer every ``checkpoint_every`` steps with
the soft AUCs at the final temperature without noise on a fixed grid and the black reference; the
weights of the best such score are returned (and saved in ``checkpoint_dir``, with the latest ones).
"""
from __future__ import annotations

import json
import os
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from ..checks import number, positive_float, positive_int
from ..models import as_model
from ..models.compat import graph_function
from ..progress import check_progress, progress_bar
from .auc import REFERENCES, TRAIN_STEPS, chunked_probabilities, random_grid, reference_images, soft_curves, trapezoid
from .explainer import build_explainer, check_explainer, explainer_maps
from .sort import SINKHORN_ITERATIONS, TAU_END, TAU_START, annealed_temperature

#: the authors' loss weights and regulariser settings
PEAK_WEIGHT = 0.0025
PEAK_KERNEL = 15
MASK_SIGMA = 1.0
WEIGHT_DECAY = 1e-3
CLIP_NORM = 1.0
WARMUP_SHARE, WARMUP_DIVISOR, FINAL_DIVISOR = 0.06, 25.0, 1e4
#: scaled for a CPU (the authors: 32 images per step, lr 3e-4, one ImageNet epoch)
DEFAULT_STEPS = 300
DEFAULT_IMAGES_PER_STEP = 4
DEFAULT_LEARNING_RATE = 1e-3
#: the validation score's fixed grid (capped at the image size)
VALIDATION_GRID = 16


def peak_penalty(maps: tf.Tensor, kernel: int = PEAK_KERNEL) -> tf.Tensor:
    """Mean of relu(map - local mean over ``kernel`` x ``kernel``)^2 (reflected edges), the authors' peak
    suppression term."""
    pad = kernel // 2
    x = tf.pad(maps[..., None], [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    local = tf.nn.avg_pool2d(x, kernel, 1, "VALID")[..., 0]
    return tf.reduce_mean(tf.square(tf.nn.relu(maps - local)))


def explained_classes(scores: np.ndarray, labels: Optional[np.ndarray]) -> np.ndarray:
    """(N, 2): the top-1 class and the label if the top-1 is wrong, else the runner-up (the authors'
    ``prediction_and_ground_truth``; without labels: top-1 and runner-up)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    top1, runner_up = order[:, 0], order[:, 1]
    second = runner_up if labels is None else np.where(top1 == labels, runner_up, labels)
    return np.stack([top1, second], axis=1).astype(np.int32)


def check_differentiable(adapter, image: np.ndarray):
    """ValueError naming ``model`` when its probabilities have no (or an all-zero) input gradient."""
    x = tf.constant(image[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        top = tf.reduce_max(chunked_probabilities(adapter, 1)(x))  # the soft AUCs' own forward and backward
    g = tape.gradient(top, x)
    if g is None or not np.any(g.numpy() != 0):
        raise ValueError(f"model: {adapter.name!r} has no gradient with respect to its input images, so an explainer "
                         "cannot be trained on it (soft AUCs backpropagate through the model)")


def train_explainer(model, images, targets=None, *, explainer=None, steps: int = DEFAULT_STEPS,
                    batch_size: int = 32, seed: int = 0, progress=True,
                    images_per_step: int = DEFAULT_IMAGES_PER_STEP, learning_rate: float = DEFAULT_LEARNING_RATE,
                    validation: float = 0.1, checkpoint_dir: Optional[str] = None, checkpoint_every: int = 50,
                    second_target: bool = True) -> keras.Model:
    """Train an explainer for ``model`` on ``images`` (N,H,W,C pixels) by Learn to Rank's loss.

    ``targets``: the images' labels (None: explain the predictions). ``explainer``: a keras.Model to
    train (all its trainable variables), None: :func:`~tfxattr.learn.build_explainer` (a decoder over
    the frozen model's features). ``steps``: optimiser steps; ``batch_size``: rows per model call
    (bounds memory); ``images_per_step``: images drawn per step; ``seed``: everything random (batches,
    grid sizes, references, Gumbel noise, the default explainer's initialisation). ``progress``: a bar.
    ``validation``: the share of images held out to select the returned weights. ``checkpoint_dir``:
    where ``latest.keras``, ``best.keras`` and ``log.json`` go every ``checkpoint_every`` steps.
    ``second_target``: also explain the second class of :func:`explained_classes` (twice the cost).
    """
    positive_int(steps, "steps")
    positive_int(batch_size, "batch_size")
    positive_int(images_per_step, "images_per_step")
    positive_int(checkpoint_every, "checkpoint_every")
    positive_float(learning_rate, "learning_rate")
    number(validation, "validation", 0.0, 0.5)
    check_progress(progress)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    adapter = as_model(model, batch_size=batch_size)
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[1:] != tuple(s or d for s, d in zip(adapter.input_shape, x.shape[1:])):
        raise ValueError(f"images must be (N,) + {adapter.input_shape}, got {x.shape}")
    if len(x) < 2:
        raise ValueError(f"images must hold at least 2 images (one for validation), got {len(x)}")
    labels = None if targets is None else np.asarray(targets)
    if labels is not None and (labels.shape != (len(x),) or labels.dtype.kind not in "iu"
                               or np.any(labels < 0) or np.any(labels >= adapter.num_classes)):
        raise ValueError(f"targets must be {len(x)} ints in [0, {adapter.num_classes}) (the images' labels) or None")
    check_differentiable(adapter, x[0])
    if explainer is None:
        explainer = build_explainer(adapter, seed=int(seed))
    elif not isinstance(explainer, keras.Model):
        raise ValueError(f"explainer must be a keras.Model or None, got {type(explainer).__name__}")
    check_explainer(explainer, adapter)
    variables = list(explainer.trainable_variables)
    if not variables:
        raise ValueError("explainer has no trainable variables")

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = max(1, int(round(validation * len(x)))) if validation > 0 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    classes = explained_classes(adapter.scores(x), labels)
    classes = classes if second_target else classes[:, :1]
    references = {name: reference_images(name, x, adapter.pixel_range) for name in REFERENCES}

    warmup = max(1, int(round(WARMUP_SHARE * steps)))
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate / WARMUP_DIVISOR, decay_steps=max(1, steps - warmup), alpha=1.0 / WARMUP_DIVISOR / FINAL_DIVISOR,
        warmup_target=learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=WEIGHT_DECAY, global_clipnorm=CLIP_NORM)
    optimizer.build(variables)  # its slots exist before train_step is traced: one trace, not two
    probs = chunked_probabilities(adapter, batch_size)
    fractions = np.linspace(0.0, 1.0, TRAIN_STEPS)
    h, w, c = x.shape[1:]
    spec = [tf.TensorSpec((None, h, w, c), tf.float32), tf.TensorSpec((None, h, w, c), tf.float32),
            tf.TensorSpec((None,), tf.int32), tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.float32),
            tf.TensorSpec((2,), tf.int32)]

    @graph_function(input_signature=spec)
    def train_step(xb, rb, tb, grid, tau, noise_seed):
        with tf.GradientTape() as tape:
            maps = explainer_maps(explainer, adapter, xb, tb)
            curves = soft_curves(probs, xb, rb, maps, tb, grid, fractions, tau, SINKHORN_ITERATIONS, noise_seed,
                                 MASK_SIGMA)
            aucs = trapezoid(curves, fractions)  # (rows, 2): deletion, insertion
            deletion, insertion = tf.reduce_mean(aucs[:, 0]), tf.reduce_mean(aucs[:, 1])
            loss = deletion + (1.0 - insertion) + PEAK_WEIGHT * peak_penalty(maps)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, deletion, insertion

    @graph_function(input_signature=spec[:5])
    def score(xb, rb, tb, grid, tau):
        maps = explainer_maps(explainer, adapter, xb, tb)
        curves = soft_curves(probs, xb, rb, maps, tb, grid, fractions, tau, SINKHORN_ITERATIONS, None, 0.0)
        aucs = trapezoid(curves, fractions)
        return tf.reduce_mean(aucs[:, 0]), tf.reduce_mean(aucs[:, 1])

    def rows(idx):
        t = classes[idx]
        return (np.repeat(x[idx], t.shape[1], 0), t.reshape(-1))

    def validate():
        if not n_val:
            return None
        xv, tv = rows(val_idx)
        rv = np.repeat(references["black"][val_idx], classes.shape[1], 0)
        d, i = score(xv, rv, tv, min(VALIDATION_GRID, h, w), TAU_END)
        return float(d - i)  # lower is better: deletion AUC - insertion AUC

    log, best, best_weights = [], np.inf, None
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
    with progress_bar(steps, "training explainer", progress, unit="step") as bar:
        for step in range(steps):
            pick = rng.choice(train_idx, size=min(images_per_step, len(train_idx)), replace=False)
            xb, tb = rows(pick)
            ref = REFERENCES[int(rng.integers(len(REFERENCES)))]
            rb = np.repeat(references[ref][pick], classes.shape[1], 0)
            tau = annealed_temperature(step / max(steps - 1, 1), TAU_START, TAU_END)
            loss, d, i = train_step(xb, rb, tb, random_grid(rng, h, w), tau, [int(seed), step])
            entry = {"step": step + 1, "loss": float(loss), "deletion": float(d), "insertion": float(i)}
            if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
                entry["validation"] = v = validate()
                if v is not None and v < best:
                    best, best_weights = v, [w.numpy() for w in variables]
                    _save(explainer, checkpoint_dir, "best.keras")
                _save(explainer, checkpoint_dir, "latest.keras")
                if checkpoint_dir is not None:
                    with open(os.path.join(checkpoint_dir, "log.json"), "w") as f:
                        json.dump(log + [entry], f)
            log.append(entry)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{entry['loss']:.3f}", deletion=f"{d:.3f}", insertion=f"{i:.3f}")
            bar.update()
    if best_weights is not None:
        for var, value in zip(variables, best_weights):
            var.assign(value)
    return explainer


def _save(explainer, folder, name):
    if folder is not None:
        explainer.save(os.path.join(folder, name))
