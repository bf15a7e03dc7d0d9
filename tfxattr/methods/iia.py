"""Iterated Integrated Attributions (Barkan et al., ICCV 2023), Eq. 5-10 and Sec. 3.4-3.5.

Representations ``u^0 .. u^l`` (the input and/or valid split layers) are interpolated in turn,
``v^j = r^j + a_j (u^j - r^j)`` (Eq. 6), each interpolant is propagated to the next representation,
and at the last one (the integrand layer ``l``) the integrand ``q^l = v^l * df_c/dv^l`` (Sec. 3.4)
is summed over all nested steps (Eq. 10)::

    m = 1/n^beta  sum_{k_0} ... sum_{k_l}  mean_channels( (u^l - r^l) * q^l )

then resized bilinearly to the input size. ``r^j`` is the per-channel minimum of ``u^j`` (or zero)
for activations and the ``baseline`` image for the input. Only layer ``l`` needs gradients: earlier
levels are forward passes, run in chunks of ``batch_size`` (Sec. 3.5): IIA2 with n = 10 is 10 stem
passes and 100 head gradient passes per image.

The public reference code differs (see NOTES.md): its IIA2 activation reference is a min over a
size-1 axis (no interpolation of the activations at all), its IIA3 reference is an element-wise
min over the input path, and it adds ReLUs and min-max scaling. This file implements the paper.
"""
from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from ..batching import as_rows, chunk_loop, count, finish, rows
from ..checks import one_of, positive_int
from ..models.compat import graph_function
from ..models.layers import INPUT, input_spec, keras_model_of, layer_chain, layer_graph, resolve_layers
from ..paths.rules import EQUAL_WEIGHT_RULES, equal_weight_params
from ..progress import progress_bar
from .base import Method


class IIA(Method):
    """IIA over ``layers`` (any of "input", "last_block", "penultimate_block", layer names/paths).

    ``integrand_layer`` (default: the deepest of ``layers``) is where ``q`` is taken; it may lie past
    the interpolated ones (the paper's IMG ablation: ``layers=["input"], integrand_layer="last_block"``).
    ``rule="right"`` is Eq. 10 (``a = k/n, k = 1..n``). ``integrand="gradient"`` uses ``q = df/dv``
    (with ``layers=["input"]`` this is IG, Sec. 3.3). Output: (N, H, W, 1) at input resolution.
    """
    name = "iia"
    summary = ("Iterated Integrated Attributions (Barkan et al. 2023, Eq. 10) over the input and any valid "
               "layers (layers=[...], steps per layer)")
    defaults = {"layers": (INPUT, "last_block"), "integrand_layer": None, "steps": 10, "rule": "right",
                "reference": "min", "baseline": "black", "integrand": "activation_gradient", "app": None}
    architecture = "cnn"  # its blocks are (N, h, w, C) activation maps (iia_vit for ViTs)

    def required_architecture(self):
        return None if all(layer == INPUT for layer in self.options["layers"]) else self.architecture

    def validate(self):
        layers = self.options["layers"]
        if isinstance(layers, str):
            layers = (layers,)
        if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(n, str) and n for n in layers):
            raise ValueError(f"layers must be a non-empty list of layer names (or 'input'), got {layers!r}")
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers must not repeat a name, got {list(layers)}")
        positive_int(self.options["steps"], "steps")
        one_of(self.options["rule"], "rule", EQUAL_WEIGHT_RULES)
        one_of(self.options["reference"], "reference", ("min", "zero"))
        one_of(self.options["integrand"], "integrand", ("activation_gradient", "gradient"))
        for key in ("integrand_layer", "app"):
            v = self.options[key]
            if v is not None and not (isinstance(v, str) and v):
                raise ValueError(f"{key} must be a layer/application name or None, got {v!r}")

    @property
    def layers(self) -> tuple:
        """``layers`` as a tuple (a single name is allowed)."""
        layers = self.options["layers"]
        return (layers,) if isinstance(layers, str) else tuple(layers)

    # -- plan --------------------------------------------------------------------------------
    def plan(self, evaluator):
        """``(representations input->output, interpolated flags)`` as full layer paths."""
        model = keras_model_of(evaluator, self.name)
        graph = layer_graph(model)
        app, hint = self.options["app"], getattr(evaluator, "name", None)
        given = self.layers
        layers = resolve_layers(model, given, app, hint)
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers {list(given)} resolve to the same layer twice: {layers}")
        wanted = None
        if self.options["integrand_layer"] is not None:
            wanted = resolve_layers(model, [self.options["integrand_layer"]], app, hint)[0]

        def position(path):
            if path == INPUT:
                return -1
            key = graph.split_key(path)
            if len(graph.shapes[key]) != 4:
                raise ValueError(f"IIA needs layers with (N, H, W, C) outputs; {path!r} has shape "
                                 f"{graph.shapes[key]}. Valid 4-D split layers: {graph.valid_names(ndim=4)[-20:]}")
            return graph.position[key]

        ordered = sorted(set(layers) | ({wanted} if wanted else set()), key=position)
        if wanted is not None and ordered[-1] != wanted:
            raise ValueError(f"integrand_layer {self.options['integrand_layer']!r} lies before the interpolated "
                             f"layer {ordered[-1]!r}; the integrand is taken at or after the last interpolated layer")
        return ordered, [r in layers for r in ordered]

    # -- attribution -----------------------------------------------------------------------------
    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        reps, interpolated = self.plan(evaluator)
        chain = layer_chain(evaluator, [r for r in reps if r != INPUT], self.name)
        x, t = as_rows(images, targets)
        baselines = tf.convert_to_tensor(self.baselines(evaluator, images), tf.float32) if reps[0] == INPUT else None
        run = _Run(self, evaluator.batch_size, chain, reps, interpolated, x, t, baselines)
        return finish(run.result(progress))


class _Run:
    r"""One IIA evaluation: depth-first over the nested steps, every model call a chunk of batch_size rows
    (nested :func:`~tfxattr.batching.chunk_loop`\ s: Python loops eagerly, ``tf.while_loop``\ s traced)."""

    def __init__(self, method, batch_size, chain, reps, interpolated, images, targets, baselines):
        alphas = equal_weight_params(method.options["steps"], method.options["rule"])  # a_k = (k + offset) / n
        self.alphas = tf.constant(alphas.astype(np.float32))
        self.method, self.chain, self.reps, self.interpolated = method, chain, reps, interpolated
        self.images, self.targets, self.baselines = images, targets, baselines
        self.batch = batch_size
        self.has_input = reps[0] == INPUT
        self.last = len(reps) - 1
        self.zero_reference = method.options["reference"] == "zero"
        self.beta = sum(interpolated)
        self.integrand = _integrand_fn(chain, method.options["integrand"])
        self.bar = None

    def _stage(self, level):
        """The sub-model producing representation ``level`` (from pixels for level 0)."""
        i = level - 1 if self.has_input else level
        return self.chain.function(f"stage{i}", lambda: graph_function(
            functools.partial(self.chain.stage, i), input_signature=[input_spec(self.chain.stages[i])]))

    def _reference(self, level, u, img):
        if self.reps[level] == INPUT:
            return tf.gather(self.baselines, img)
        if self.zero_reference:
            return tf.zeros_like(u)
        return tf.reduce_min(u, axis=[1, 2], keepdims=True) + tf.zeros_like(u)

    def _steps(self, level):
        return self.alphas if self.interpolated[level] else tf.ones([1], tf.float32)

    def result(self, progress):
        n_img = rows(self.images)
        head = self.chain.stages[-1].inputs[0].shape[1:3]  # the integrand's map: the head input's grid
        acc = tf.zeros(tf.concat([[n_img], head], 0), tf.float64)

        def top(start, stop, acc):
            img = tf.range(start, stop)
            x = tf.gather(self.images, img)
            return (self._level(0, x if self.has_input else self._stage(0)(x), img, acc),)

        total = self._count_head_chunks(n_img) if tf.executing_eagerly() else 0
        with progress_bar(total, self.method.name, progress) as self.bar:
            (acc,) = chunk_loop(n_img, self.batch, top, (acc,))
        maps = acc / float(self.alphas.shape[0]) ** self.beta
        h, w = self.images.shape[1:3]
        if tuple(head) != (h, w):
            maps = tf.image.resize(maps[..., None], (h, w), method="bilinear")[..., 0]
        return maps[..., None]

    def _level(self, level, u, img, acc):
        """``acc`` plus the integrand summed over the steps of ``level`` and every level below it, for the
        representations ``u`` of images ``img`` (row ``k``: image ``k // m`` at step ``k % m``)."""
        r = self._reference(level, u, img)
        alphas = self._steps(level)
        m = int(alphas.shape[0])

        def body(start, stop, acc):
            k = tf.range(start, stop)
            rr = k // m
            ug, rg = tf.gather(u, rr), tf.gather(r, rr)
            v = rg + tf.reshape(tf.gather(alphas, k % m), [-1] + [1] * (len(u.shape) - 1)) * (ug - rg)
            img_rows = tf.gather(img, rr)
            if level == self.last:
                contrib = self.integrand(v, ug - rg, tf.gather(self.targets, img_rows))
                return (tf.tensor_scatter_nd_add(acc, img_rows[:, None], contrib),)
            return (self._level(level + 1, self._stage(level + 1)(v), img_rows, acc),)
        return chunk_loop(rows(u) * m, self.batch, body, (acc,), bar=self.bar if level == self.last else None)[0]

    def _count_head_chunks(self, n_images: int):
        """How many head (gradient) chunks the nested walk makes, for the progress bar."""
        b = self.batch

        @functools.lru_cache(maxsize=None)
        def head_chunks(level, m):  # m images' rows entering ``level``
            rows_ = m * int(self._steps(level).shape[0])
            if level == self.last:
                return count(rows_, b)
            full, rem = divmod(rows_, b)
            return full * head_chunks(level + 1, b) + (head_chunks(level + 1, rem) if rem else 0)

        full, rem = divmod(n_images, b)
        return full * head_chunks(0, b) + (head_chunks(0, rem) if rem else 0)


def _integrand_fn(chain, integrand):
    """``mean_c((u - r) * q)`` with ``q = v * df/dv`` (Sec. 3.4) or ``df/dv``, at the last stage's input."""
    head = chain.stages[-1]

    def build():
        def fn(v, factor, targets):
            with tf.GradientTape() as tape:
                tape.watch(v)
                f = chain.explained(v, targets)
            g = tape.gradient(f, v)
            q = v * g if integrand == "activation_gradient" else g
            return tf.reduce_mean(tf.cast(factor, tf.float64) * tf.cast(q, tf.float64), axis=-1)
        spec = input_spec(head)
        return graph_function(fn, input_signature=[spec, spec, tf.TensorSpec([None], tf.int32)])
    return chain.function(f"iia_{integrand}", build)
