"""Each exportable method as a graph function ``attribute(images, targets) -> float32 attributions``.

:func:`graph_method` turns a configured :class:`~tfxattr.methods.Method` and a
:class:`~tfxattr.models.ModelAdapter` into a function that only builds TensorFlow ops (traced inside
the exported ``tf.function``), computing what ``method.attribute`` computes. Methods without a graph
form are refused with the reason (:data:`NOT_EXPORTABLE`).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..aggregate import get_aggregator
from ..blur import gaussian_blur
from ..learn.explainer import explainer_maps
from ..methods import Method
from ..methods.ablationcam import AblationCAM, _ablated_scores
from ..methods.blur_ig import BlurIG
from ..methods.cam import cam_map
from ..methods.fullgrad import FullGrad
from ..methods.ggig import GGIG, NETWORK_ZERO
from ..methods.gradcam import GradCAM
from ..methods.gradient import Gradient
from ..methods.guided_ig import GuidedIG
from ..methods.ig import IntegratedGradients
from ..methods.iia import IIA, RULES, _integrand_fn
from ..methods.learned import Learned, scaled
from ..methods.occlusion import Occlusion
from ..methods.scorecam import ScoreCAM, normalised_masks
from ..methods.smooth import SmoothGrad
from ..models.layers import INPUT, layer_chain
from . import graph
from .paths import GraphAscent, GraphBlur, GraphGuided, GraphStraightLine

# registered methods with no graph form, and why (shown when one is asked for)
NOT_EXPORTABLE = {
    "xrai": "its segmentation (Felzenszwalb over several scales) runs in scikit-image, outside TensorFlow",
    "path": "its points are a user-given array fixed per explain() call, not a function of the served images",
    "rise": "its thousands of seeded NumPy masks would be stored in the graph (samples x H x W floats); drawing "
            "them with TF's random ops instead would not give explain()'s masks",
}


class NotExportable(ValueError):
    """A method that has no graph form (raised at export time, naming the method and why)."""


def graph_method(method: Method, adapter, batch_size: int, seed: int):
    """``attribute(images, targets)`` building the graph of ``method`` on ``adapter``'s model."""
    for cls, build in BUILDERS:
        if isinstance(method, cls):
            return build(method, adapter, batch_size, seed)
    reason = NOT_EXPORTABLE.get(method.name, f"no graph form is written for {type(method).__name__}")
    raise NotExportable(f"method {method.name!r} cannot be exported: {reason}")


def graph_baselines(method: Method, adapter, images):
    """The graph form of :func:`tfxattr.inputs.resolve_baseline` for ``method``'s ``baseline`` option."""
    baseline = method.options.get("baseline")
    lo, hi = adapter.pixel_range
    if baseline is None or isinstance(baseline, str):
        name = "black" if baseline is None else baseline.lower()
        if name in ("black", "zero", "zeros"):
            return tf.fill(tf.shape(images), tf.constant(lo, tf.float32))
        if name == "white":
            return tf.fill(tf.shape(images), tf.constant(hi, tf.float32))
        if name == "blur":
            return gaussian_blur(images, method.options.get("blur_sigma", 20.0))
        raise NotExportable(f"method {method.name!r} cannot be exported with baseline={baseline!r}")
    arr = np.asarray(baseline.numpy() if hasattr(baseline, "numpy") else baseline, dtype=np.float32)
    if arr.ndim == 0:
        return tf.fill(tf.shape(images), tf.constant(float(arr), tf.float32))
    if arr.ndim == 3 and np.all(np.isfinite(arr)):
        return tf.zeros_like(images) + tf.constant(arr)
    raise NotExportable(f"method {method.name!r} cannot be exported with a baseline of shape {arr.shape}: the "
                        "served model takes any number of images, so give one (H, W, C) baseline or a name")


def _gradient(method, adapter, batch_size, seed):
    vg = graph.values_and_gradients_fn(adapter)
    times_input = method.options["times_input"]

    def attribute(images, targets):
        (g,) = graph.chunk_map(lambda x, t: (vg(x, t)[1],), [tf.float32], tf.shape(images)[0], batch_size,
                               images, targets)
        return g * images if times_input else g
    return attribute


def _fixed_path(make):
    def build(method, adapter, batch_size, seed):
        if method.options.get("schedule", "uniform") != "uniform":  # IG's adaptive schedule: a coarse pass first
            raise NotExportable(f"method {method.name!r} cannot be exported with schedule="
                                f"{method.options['schedule']!r}: its points come from a coarse pass on each image")
        path = make(method.make_path(adapter, None))
        aggregator = get_aggregator(method.options["aggregator"])
        if aggregator.reduce != "sum":
            raise NotExportable(f"method {method.name!r} cannot be exported with aggregator {aggregator.name!r}")
        if aggregator.needs_values:  # fails at export time, not at the first request
            segments = np.flatnonzero(path.plan.has_ends)
            graph.check_carry(path.plan, segments, set(path.plan.value_only_points().tolist()), batch_size)

        def attribute(images, targets):
            baselines = graph_baselines(method, adapter, images) if "baseline" in method.options else images
            return graph.integrate_fixed(adapter, path, aggregator, images, baselines, targets, batch_size)
        return attribute
    return build


def _fixed_size(method, adapter):
    h, w = adapter.input_shape[:2]
    if h is None or w is None:
        raise NotExportable(f"method {method.name!r} cannot be exported for a model without a fixed input size: "
                            "its map is resized to the input size")
    return h, w


def _per_chunk(make):
    """A builder for methods whose whole computation on a chunk of images is one function
    ``make(method, adapter, size) -> fn(images, targets) -> attributions``, mapped over chunks of ``batch_size``."""
    def build(method, adapter, batch_size, seed):
        fn = make(method, adapter, _fixed_size(method, adapter))

        def attribute(images, targets):
            (out,) = graph.chunk_map(lambda x, t: (fn(x, t),), [tf.float32], tf.shape(images)[0], batch_size,
                                     images, targets)
            return out
        return attribute
    return build


def _gradcam(method, adapter, size):
    return method._build(method.chain(adapter), size)  # the method's own tf.function


def _fullgrad(method, adapter, size):
    return FullGrad.build(layer_chain(adapter, [], method.name), size)


def _row_values(fn, n_rows, batch_size, *rows):
    """``fn(*row_chunk) -> (rows,)`` float32 values over ``rows`` in chunks of ``batch_size``, concatenated."""
    return graph.chunk_map(lambda *r: (tf.cast(fn(*r), tf.float32),), [tf.float32], n_rows, batch_size, *rows)[0]


def _channel_rows(n, channels):
    """(image, channel) rows of ``n`` images x ``channels`` (n, K) channel ids, image-major."""
    k = tf.shape(channels)[1]
    return tf.repeat(tf.range(n), k), tf.reshape(channels, [-1])


def _perturbation_cam(weights_of):
    """A builder for a CAM whose weights ``weights_of(method, adapter, chain, batch_size)(a, x, t) -> (n, C)``
    run their own chunks of ``batch_size`` rows inside each chunk of images."""
    def make(method, adapter, batch_size, seed):
        chain = method.chain(adapter)
        size = _fixed_size(method, adapter)
        weights = weights_of(method, adapter, chain, batch_size)
        relu = method.options["relu"]

        def chunk(x, t):
            a = chain.stage(0, x)
            return (cam_map(a, weights(a, x, t)[:, None, None, :], size, relu),)

        def attribute(images, targets):
            return graph.chunk_map(chunk, [tf.float32], tf.shape(images)[0], batch_size, images, targets)[0]
        return attribute
    return make


def _ablation_weights(method, adapter, chain, batch_size):
    scores = _ablated_scores(chain)

    def weights(a, x, t):
        n, c = tf.shape(a)[0], a.shape[-1]
        y = scores(a, tf.fill([n], -1), t)
        img, ch = _channel_rows(n, tf.tile(tf.range(c)[None], [n, 1]))
        dropped = _row_values(lambda i, k: scores(tf.gather(a, i), k, tf.gather(t, i)), n * c, batch_size, img, ch)
        return tf.math.divide_no_nan(y[:, None] - tf.reshape(dropped, [n, c]), y[:, None])
    return weights


def _score_weights(method, adapter, chain, batch_size):
    f = graph.explained_fn(adapter)
    lo = float(adapter.pixel_range[0])
    size = _fixed_size(method, adapter)

    def weights(a, x, t):
        n, c = tf.shape(a)[0], a.shape[-1]
        keep = c if method.options["max_n"] is None else min(c, method.options["max_n"])
        channels = tf.sort(tf.math.top_k(tf.math.reduce_variance(a, axis=[1, 2]), keep).indices, axis=1)
        img, ch = _channel_rows(n, channels)

        def masked(i, k):
            masks = normalised_masks(tf.gather(tf.gather(a, i), k, axis=3, batch_dims=1)[..., None], size)
            return f(lo + masks * (tf.gather(x, i) - lo), tf.gather(t, i))
        scores = tf.reshape(_row_values(masked, n * keep, batch_size, img, ch), [n, keep])
        soft = tf.nn.softmax(tf.cast(scores, tf.float64), axis=1)
        return tf.cast(tf.reduce_sum(soft[..., None] * tf.one_hot(channels, c, dtype=tf.float64), axis=1), tf.float32)
    return weights


def _occlusion(method, adapter, batch_size, seed):
    h, w = _fixed_size(method, adapter)
    boxes = method.patches(h, w)
    covered = np.zeros((h, w), np.float32)
    for top, left, bottom, right in boxes:
        covered[top:bottom, left:right] += 1
    f = graph.explained_fn(adapter)
    rows_ix, cols_ix = tf.range(h)[None, :, None], tf.range(w)[None, None, :]

    def patch_masks(box):  # (rows, 4) boxes -> (rows, H, W) 0/1 masks
        inside = (rows_ix >= box[:, 0, None, None]) & (rows_ix < box[:, 2, None, None]) \
            & (cols_ix >= box[:, 1, None, None]) & (cols_ix < box[:, 3, None, None])
        return tf.cast(inside, tf.float32)

    def chunk(x, t):
        b = graph_baselines(method, adapter, x)
        full = f(x, t)
        n = tf.shape(x)[0]
        img, patch = _channel_rows(n, tf.tile(tf.range(len(boxes))[None], [n, 1]))
        all_boxes = tf.constant(boxes, tf.int32)

        def body(start, stop, total):
            i, m = img[start:stop], patch_masks(tf.gather(all_boxes, patch[start:stop]))
            occluded = tf.gather(x, i) * (1.0 - m[..., None]) + tf.gather(b, i) * m[..., None]
            drop = tf.gather(full, i) - f(occluded, tf.gather(t, i))
            return (tf.tensor_scatter_nd_add(total, i[:, None], drop[:, None, None] * m),)
        (total,) = graph.chunk_loop(tf.size(img), batch_size, body, (tf.zeros([n, h, w], tf.float32),))
        return ((total / covered)[..., None],)

    def attribute(images, targets):
        return graph.chunk_map(chunk, [tf.float32], tf.shape(images)[0], batch_size, images, targets)[0]
    return attribute


def noise_seeds(images, seed: int):
    """(N, 2) int64 stateless seeds: ``seed`` and a fingerprint of each image's bytes, so an image's noise
    does not depend on its place in the batch (as the library's per-image noise)."""
    fp = tf.reshape(tf.bitcast(tf.fingerprint(images), tf.int64), [-1])  # 8 bytes per image -> one int64
    return tf.stack([tf.fill(tf.shape(fp), tf.constant(int(seed), tf.int64)), fp], 1)


def noisy_copies(images, samples: int, noise: float, seed: int):
    """(N, samples, H, W, C): ``x + N(0, sigma^2)`` with ``sigma = noise (max(x) - min(x))`` per image
    (SmoothGrad, Smilkov et al. 2017, Eq. 3; PAIR's ``GetSmoothedMask``), stateless normal noise from
    :func:`noise_seeds`."""
    flat = tf.reshape(images, [tf.shape(images)[0], -1])
    std = tf.constant(noise, tf.float32) * (tf.reduce_max(flat, 1) - tf.reduce_min(flat, 1))
    shape = tf.concat([[samples], tf.shape(images)[1:]], 0)
    normal = tf.map_fn(lambda s: tf.random.stateless_normal(shape, s, dtype=tf.float32), noise_seeds(images, seed),
                       fn_output_signature=tf.float32)
    return images[:, None] + normal * tf.reshape(std, [-1, 1, 1, 1, 1])


def _smooth(method, adapter, batch_size, seed):
    base = graph_method(method.base_method(), adapter, batch_size, seed)
    samples, noise, magnitude = method.options["samples"], method.options["noise"], method.options["magnitude"]
    per_call = max(1, batch_size // samples)  # images whose noisy copies fill about one batch (as the library)

    def chunk(x, t):
        noisy = noisy_copies(x, samples, noise, seed)
        flat = tf.reshape(noisy, tf.concat([[-1], tf.shape(x)[1:]], 0))
        a = base(flat, tf.repeat(t, samples))
        a = tf.reshape(a, tf.concat([[tf.shape(x)[0], samples], tf.shape(a)[1:]], 0))
        a = tf.cast(a * a if magnitude else a, tf.float64)
        return (tf.cast(tf.reduce_mean(a, 1), tf.float32),)

    def attribute(images, targets):
        return graph.chunk_map(chunk, [tf.float32], tf.shape(images)[0], per_call, images, targets)[0]
    return attribute


def _iia(method, adapter, batch_size, seed):
    reps, interpolated = method.plan(adapter)
    chain = layer_chain(adapter, [r for r in reps if r != INPUT], method.name)
    n_steps = method.options["steps"]
    alphas = tf.constant(((np.arange(n_steps) + RULES[method.options["rule"]]) / n_steps).astype(np.float32))
    has_input, last = reps[0] == INPUT, len(reps) - 1
    beta = sum(interpolated)
    zero_reference = method.options["reference"] == "zero"
    integrand = _integrand_fn(chain, method.options["integrand"])
    h, w = adapter.input_shape[:2]
    if h is None or w is None:
        raise NotExportable(f"method {method.name!r} cannot be exported for a model without a fixed input size")

    def stage(level, x):
        return chain.stage(level - 1 if has_input else level, x)

    def attribute(images, targets):
        baselines = graph_baselines(method, adapter, images) if has_input else None
        head_shape = chain.stages[-1].inputs[0].shape[1:3]
        acc = tf.zeros(tf.concat([tf.shape(images)[:1], head_shape], 0), tf.float64)

        def level(lv, u, img, acc):
            if reps[lv] == INPUT:
                r = tf.gather(baselines, img)
            elif zero_reference:
                r = tf.zeros_like(u)
            else:
                r = tf.reduce_min(u, axis=[1, 2], keepdims=True) + tf.zeros_like(u)
            a = alphas if interpolated[lv] else tf.ones([1], tf.float32)
            m = a.shape[0]

            def body(start, stop, acc):
                k = tf.range(start, stop)
                rr = k // m
                ug, rg = tf.gather(u, rr), tf.gather(r, rr)
                v = rg + tf.reshape(tf.gather(a, k % m), [-1, 1, 1, 1]) * (ug - rg)
                rows_img = tf.gather(img, rr)
                if lv == last:
                    contrib = integrand(v, ug - rg, tf.gather(targets, rows_img))
                    return (tf.tensor_scatter_nd_add(acc, rows_img[:, None], contrib),)
                return (level(lv + 1, stage(lv + 1, v), rows_img, acc),)
            return graph.chunk_loop(tf.shape(u)[0] * m, batch_size, body, (acc,))[0]

        def top(start, stop, acc):
            img = tf.range(start, stop)
            x = tf.gather(images, img)
            return (level(0, x if has_input else stage(0, x), img, acc),)

        acc = graph.chunk_loop(tf.shape(images)[0], batch_size, top, (acc,))[0]
        maps = acc / float(n_steps) ** beta
        if tuple(head_shape) != (h, w):
            maps = tf.image.resize(maps[..., None], (h, w), method="bilinear")[..., 0]
        return tf.cast(maps[..., None], tf.float32)
    return attribute


def _guided(method, adapter, batch_size, seed):
    path = GraphGuided(method.make_path(adapter, None))
    aggregator = get_aggregator(method.options["aggregator"])
    vg, f = graph.values_and_gradients_fn(adapter), graph.explained_fn(adapter)

    def attribute(images, targets):
        baselines = graph_baselines(method, adapter, images)
        return graph.integrate_adaptive(vg, f, path, aggregator, images, baselines, targets, batch_size)
    return attribute


def _ggig(method, adapter, batch_size, seed):
    path = GraphAscent(method.make_path(adapter, None))
    aggregator = get_aggregator(method.options["aggregator"])
    to_network, network = adapter.network_view()
    if tuple(network.input_shape) != tuple(adapter.input_shape):
        raise NotExportable(f"method {method.name!r} ascends in the network's input space, which must have the "
                            f"images' shape {adapter.input_shape}; the preprocessing makes it {network.input_shape}")
    vg, f = graph.values_and_gradients_fn(network), graph.explained_fn(network)

    def attribute(images, targets):
        n = tf.shape(images)[0]
        def mapped(pixels):
            (z,) = graph.chunk_map(lambda x: (tf.cast(to_network(x), tf.float32),), [tf.float32], n, batch_size, pixels)
            return tf.ensure_shape(z, images.shape)

        z = mapped(images)
        z_b = tf.zeros_like(z) if method.options["baseline"] == NETWORK_ZERO else \
            mapped(graph_baselines(method, adapter, images))
        return graph.integrate_adaptive(vg, f, path, aggregator, z, z_b, targets, batch_size)
    return attribute


def _learned(method, adapter, batch_size, seed):
    explainer = method.explainer(adapter, seed)  # its weights are captured by the signature (tracked on export)

    shape = [None] + list(adapter.input_shape)  # chunk slices lose the static shape the resize needs

    def attribute(images, targets):
        (out,) = graph.chunk_map(lambda x, t: (scaled(explainer_maps(explainer, adapter, tf.ensure_shape(x, shape),
                                                                     t)),),
                                 [tf.float32], tf.shape(images)[0], batch_size, images, targets)
        return out
    return attribute


# Method class -> graph builder; the first match wins (GradCAM covers Grad-CAM++, Layer-CAM, XGrad-CAM, LIFT-CAM)
BUILDERS = [
    (Gradient, _gradient),
    (IntegratedGradients, _fixed_path(GraphStraightLine)),
    (BlurIG, _fixed_path(GraphBlur)),
    (GradCAM, _per_chunk(_gradcam)),
    (FullGrad, _per_chunk(_fullgrad)),
    (AblationCAM, _perturbation_cam(_ablation_weights)),
    (ScoreCAM, _perturbation_cam(_score_weights)),
    (Occlusion, _occlusion),
    (SmoothGrad, _smooth),
    (IIA, _iia),
    (GuidedIG, _guided),
    (GGIG, _ggig),
    (Learned, _learned),
]
