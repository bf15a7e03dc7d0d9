"""Sanity checks: does the explanation change when the model does?

* :func:`cascading_randomization` — Adebayo et al., "Sanity checks for saliency maps" (NeurIPS 2018),
  Sec. 3.1: re-initialise the weighted layers from the logits down, cumulatively, one layer (or block)
  at a time, and compare each explanation with the original one.
* :func:`sigma_perturbation` — Rahman, Lewis, Plis (GGIG), Sec. 4: ``w' = w + N(0, eps)`` for growing
  ``eps``; the target probability should fall toward ``1/C`` (Property 1) and the explanation's
  similarity to the original toward 0 (Property 2).

Similarity of two attributions (N,H,W,C): Spearman rank correlation of the channel-summed map (signed)
and of ``sum |a|`` over channels (abs), and SSIM (``tf.image.ssim``) of the abs maps min-max scaled to
[0, 1]. Both checks work on a clone of the model: the user's model is never modified.

They run explanations rather than score given maps, so they live here, not in :mod:`tfxattr.metrics`;
importing this module registers them in ``METRICS`` with ``consumes="model"`` (``import tfxattr`` does).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import spearmanr

from ..checks import positive_int
from ..explain import explain
from ..explanation import Explanation
from ..inputs import load_images, resolve_targets
from ..methods import Method, get_method
from ..metrics.base import MetricResult, register_metric
from ..models import as_model
from ..reduction import reduce_channels

INITIALIZED = ("kernel", "bias", "depthwise_kernel", "pointwise_kernel", "gamma", "beta", "moving_mean",
               "moving_variance", "embeddings", "recurrent_kernel")
# tf.image.ssim's default window (shrunk for maps smaller than it)
SSIM_FILTER_SIZE = 11
# seed offset between randomization steps: above any layer's variable count, so seeds (seed + i) differ per step
STEP_SEED_STRIDE = 1000


@dataclass
class SanityResult:
    """``rows``: one dict per step (means over images); ``per_image``: column -> (steps, N) arrays."""
    name: str
    rows: list
    per_image: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    targets: Optional[np.ndarray] = None

    def column(self, key) -> np.ndarray:
        return np.array([r[key] for r in self.rows])

    def table(self) -> str:
        keys = list(self.rows[0]) if self.rows else []
        lines = ["  ".join(f"{k:>14}" for k in keys)]
        for r in self.rows:
            lines.append("  ".join(f"{v:>14.4f}" if isinstance(v, float) else f"{str(v)[:14]:>14}" for v in r.values()))
        return "\n".join(lines)


# -- similarity ---------------------------------------------------------------------------------------
def spearman(a, b) -> np.ndarray:
    """Per-image Spearman rank correlation of (N, ...) arrays; 1 for identical maps, 0 if one is constant."""
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    out = np.empty(len(a))
    for i, (x, y) in enumerate(zip(a, b)):
        if np.array_equal(x, y):
            out[i] = 1.0
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            out[i] = 0.0
        else:
            out[i] = spearmanr(x, y).statistic
    return out


def ssim(a, b) -> np.ndarray:
    """Per-image SSIM of (N, H, W) maps, each min-max scaled to [0, 1] (constant map -> zeros)."""
    def unit(m):
        m = np.asarray(m, np.float32)
        lo = m.min(axis=(1, 2), keepdims=True)
        span = m.max(axis=(1, 2), keepdims=True) - lo
        return np.where(span > 0, (m - lo) / np.where(span > 0, span, 1.0), 0.0)[..., None]
    size = int(min(SSIM_FILTER_SIZE, a.shape[1], a.shape[2]))
    return tf.image.ssim(unit(a), unit(b), max_val=1.0, filter_size=size).numpy().astype(np.float64)


def similarity(reference, attribution) -> dict:
    """Per-image ``spearman`` (signed map), ``spearman_abs`` and ``ssim`` (abs maps) of two (N,H,W,C)."""
    ref_abs, att_abs = reduce_channels(reference, "sum_abs"), reduce_channels(attribution, "sum_abs")
    return {"spearman": spearman(reduce_channels(reference, "sum"), reduce_channels(attribution, "sum")),
            "spearman_abs": spearman(ref_abs, att_abs), "ssim": ssim(ref_abs, att_abs)}


# -- shared machinery -----------------------------------------------------------------------------------
class _Probe:
    """A private clone of ``model`` and the explanation / probabilities of fixed targets on it."""

    def __init__(self, model, images, method, target, batch_size, preprocess, output, seed, options):
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model (the checks change its weights on a clone), "
                            f"got {type(model).__name__}")
        self.clone = keras.models.clone_model(model)
        self.clone.set_weights(model.get_weights())
        self.adapter = as_model(self.clone, output=output, batch_size=batch_size, preprocess=preprocess)
        self.images, _ = load_images(images, self.adapter.input_shape)
        self.targets = resolve_targets(target, len(self.images), self.adapter.num_classes,
                                       lambda: self.adapter.scores(self.images))
        self.method, self.batch_size, self.seed, self.options = method, batch_size, seed, options
        self.original = self.weights()

    def weights(self):
        return [np.array(w) for w in self.clone.get_weights()]

    def explain(self) -> np.ndarray:
        return explain(self.adapter, self.images, self.method, target=self.targets, batch_size=self.batch_size,
                       seed=self.seed, progress=False, **self.options).attribution.reshape(self.images.shape)

    def probability(self) -> np.ndarray:
        probs = self.adapter.probabilities(self.images)
        return probs[np.arange(len(probs)), self.targets].astype(np.float64)


def _row(label, sims, prob, prob0):
    return {**label, **{k: float(np.mean(v)) for k, v in sims.items()},
            "probability": float(np.mean(prob)), "score_drop": float(np.mean(prob0 - prob))}


def _stack(per_step):
    keys = per_step[0].keys()
    return {k: np.stack([s[k] for s in per_step]) for k in keys}


# -- cascading randomization -----------------------------------------------------------------------------
def weighted_layers(model) -> list:
    """Leaf layers holding weights, in graph order, looking inside nested models."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(weighted_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def randomization_steps(model, randomize="layer") -> list:
    """Groups of layer names to randomise, top (logits) first.

    ``"layer"``: every weighted layer alone; ``"block"``: weighted layers sharing the name prefix before
    the first ``_`` (``block1_conv``, ``block1_bn``) together; or an explicit list of name lists.
    """
    names = [layer.name for layer in weighted_layers(model)][::-1]
    if randomize == "layer":
        return [[n] for n in names]
    if randomize == "block":
        groups = []
        for n in names:
            key = n.split("_")[0]
            if groups and groups[-1][0].split("_")[0] == key:
                groups[-1].append(n)
            else:
                groups.append([n])
        return groups
    if isinstance(randomize, str) or not all(isinstance(g, (list, tuple)) for g in randomize):
        raise ValueError(f"randomize must be 'layer', 'block' or a list of lists of layer names, got {randomize!r}")
    unknown = sorted({n for g in randomize for n in g} - set(names))
    if unknown:
        raise ValueError(f"randomize names layers without weights or not in the model: {unknown}; weighted: {names}")
    return [list(g) for g in randomize]


def reinitialize(layer, seed: int):
    """Re-run the layer's own initializers (seeded); weights without one get Glorot-uniform (ndim >= 2)."""
    for i, var in enumerate(layer.weights):
        name = var.path.split("/")[-1]
        init = getattr(layer, f"{name}_initializer", None) if name in INITIALIZED else None
        if init is None:
            if len(var.shape) < 2:
                continue
            init = keras.initializers.GlorotUniform()
        init = keras.initializers.get(init)
        config = init.get_config()
        if "seed" in config:
            init = type(init).from_config({**config, "seed": seed + i})
        var.assign(init(var.shape, dtype=var.dtype))


def cascading_randomization(model, images, method: str = "gradient", target=None, *, randomize="layer",
                            seed: int = 0, batch_size: int = 32, preprocess=None, output: str = "logit",
                            **options) -> SanityResult:
    """Adebayo et al. (2018) cascading randomization of ``model`` (a keras.Model, never modified).

    Step 0 is the unmodified clone (similarity 1 for a deterministic method); step k has the top k
    groups of :func:`randomization_steps` re-initialised. ``target`` (None: top-1 of the original model)
    stays fixed. Rows: ``spearman``, ``spearman_abs``, ``ssim`` to the original explanation, the target
    ``probability`` and ``score_drop`` (original minus current probability), averaged over images.
    """
    probe = _Probe(model, images, method, target, batch_size, preprocess, output, seed, options)
    groups = randomization_steps(probe.clone, randomize)
    layers = {layer.name: layer for layer in weighted_layers(probe.clone)}
    reference, prob0 = probe.explain(), probe.probability()
    rows, per_step = [], []
    for k in range(len(groups) + 1):
        if k:
            for name in groups[k - 1]:
                reinitialize(layers[name], seed + STEP_SEED_STRIDE * k)
        sims, prob = similarity(reference, probe.explain()), probe.probability()
        label = {"step": k, "layers": "none" if k == 0 else "+".join(groups[k - 1])}
        rows.append(_row(label, sims, prob, prob0))
        per_step.append({**sims, "probability": prob})
    return SanityResult("cascading_randomization", rows, _stack(per_step),
                        {**_described(method, options), "randomize": randomize, "seed": seed}, probe.targets)


# -- sigma perturbation -------------------------------------------------------------------------------
def sigma_perturbation(model, images, method: str = "gradient", target=None, *,
                       eps: Sequence[float] = (0.0, 0.001, 0.01, 0.1, 1.0), draws: int = 3, relative: bool = False,
                       seed: int = 0, batch_size: int = 32, preprocess=None, output: str = "logit",
                       **options) -> SanityResult:
    """GGIG Sec. 4 sigma-perturbation: add N(0, eps) noise (eps = standard deviation) to every trainable
    weight of a clone, ``draws`` times per ``eps``, and average over draws and images.

    ``relative=True`` scales the noise by each weight tensor's own standard deviation (the paper bounds
    eps by the weights' sigma). Rows: ``eps``, ``probability`` of the target (falls toward ``chance`` =
    1/C), ``score_drop``, and ``spearman``/``spearman_abs``/``ssim`` to the original explanation.
    """
    eps = [float(e) for e in np.atleast_1d(eps)]
    if any(not np.isfinite(e) or e < 0 for e in eps):
        raise ValueError(f"eps must be non-negative numbers, got {eps}")
    positive_int(draws, "draws")
    probe = _Probe(model, images, method, target, batch_size, preprocess, output, seed, options)
    trainable = {id(v) for v in probe.clone.trainable_weights}
    noisy = [id(v) in trainable for v in probe.clone.weights]
    reference, prob0 = probe.explain(), probe.probability()
    rng = np.random.default_rng(seed)
    chance = 1.0 / probe.adapter.num_classes
    rows, per_step = [], []
    for e in eps:
        results = []
        for _ in range(1 if e == 0 else draws):
            weights = [w + (rng.normal(0.0, e * (w.std() if relative else 1.0), w.shape).astype(w.dtype)
                            if flag and e > 0 else 0) for w, flag in zip(probe.original, noisy)]
            probe.clone.set_weights(weights)
            results.append({**similarity(reference, probe.explain()), "probability": probe.probability()})
        probe.clone.set_weights(probe.original)
        mean = {k: np.mean([r[k] for r in results], axis=0) for k in results[0]}
        prob = mean.pop("probability")
        rows.append({**_row({"eps": e}, mean, prob, prob0), "chance": chance})
        per_step.append({**mean, "probability": prob})
    return SanityResult("sigma_perturbation", rows, _stack(per_step),
                        {**_described(method, options), "eps": eps, "draws": draws, "relative": relative,
                         "seed": seed}, probe.targets)


def _described(method, options) -> dict:
    """The method fields of a result's options: its name and options, the options nested under
    ``method_options`` for a wrapper (its own ``method`` option would overwrite the name)."""
    if isinstance(method, Method):
        method, options = method.name, dict(method.options)
    if "method" in options:
        return {"method": method, "method_options": dict(options)}
    return {"method": method, **options}


# -- the metrics-registry view -----------------------------------------------------------------------
def _method_of(maps, method, method_options):
    """Method name and options: given, or those of the Explanation passed as ``maps``."""
    options = dict(method_options or {})
    if isinstance(maps, Explanation):  # its options are the method's; how it ran is apart, in ``run``
        # one Method instance, not a name plus keywords: a wrapper's ``method`` option would collide with ours
        return get_method(method or maps.method, **{**maps.options, **options}), {}, maps.run.get("output", "logit")
    if maps is not None:
        raise ValueError("maps must be None or an Explanation: the check recomputes the explanation on "
                         "changed models, so it needs the method (pass method=...), not fixed maps")
    if method is None:
        raise ValueError("method is required (or pass the Explanation to check as maps)")
    return method, options, None


def _as_metric(res: SanityResult, name):
    keys = ("spearman", "spearman_abs", "ssim")
    scores = {k: res.per_image[k][-1].astype(np.float64) for k in keys}
    scores["probability"] = res.per_image["probability"][-1].astype(np.float64)
    return MetricResult(name, scores, {k: False for k in scores}, options=res.options, targets=res.targets,
                        extras={"rows": res.rows, "per_step": res.per_image})


def cascading_randomization_metric(model, images, maps=None, targets=None, masks=None, batch_size=32, *,
                                   method=None, method_options=None, randomize="layer", seed=0, output=None,
                                   preprocess=None):
    """Adebayo et al. cascading randomization; scores after the last step (lower is better).

    Scores "spearman", "spearman_abs", "ssim" (similarity of the fully randomised model's explanation
    to the original) and "probability" (its target probability); ``extras["rows"]`` has every step.
    ``maps``: None (give ``method``/``method_options``) or the Explanation to check. ``masks`` unused.
    """
    method, options, used_output = _method_of(maps, method, method_options)
    res = cascading_randomization(model, images, method, targets, randomize=randomize, seed=seed, batch_size=batch_size,
                                  preprocess=preprocess, output=output or used_output or "logit", **options)
    return _as_metric(res, "cascading_randomization")


def sigma_perturbation_metric(model, images, maps=None, targets=None, masks=None, batch_size=32, *,
                              method=None, method_options=None, eps=(0.0, 0.001, 0.01, 0.1, 1.0), draws=3,
                              relative=False, seed=0, output=None, preprocess=None):
    """GGIG sigma-perturbation; scores at the largest ``eps`` (lower is better).

    Scores "spearman", "spearman_abs", "ssim" (similarity to the original explanation) and "probability"
    (target probability, toward 1/C); ``extras["rows"]`` has every eps. ``maps``: None (give ``method``)
    or the Explanation to check. ``masks`` unused.
    """
    method, options, used_output = _method_of(maps, method, method_options)
    res = sigma_perturbation(model, images, method, targets, eps=eps, draws=draws, relative=relative, seed=seed,
                             batch_size=batch_size, preprocess=preprocess, output=output or used_output or "logit",
                             **options)
    return _as_metric(res, "sigma_perturbation")


register_metric("cascading_randomization", cascading_randomization_metric, consumes="model")
register_metric("sigma_perturbation", sigma_perturbation_metric, consumes="model")
