"""Sanity checks: does the explanation change when the model does?

* cascading randomization — Adebayo et al., "Sanity checks for saliency maps" (NeurIPS 2018), Sec. 3.1:
  re-initialise the weighted layers from the logits down, cumulatively, one layer (or block) at a time,
  and compare each explanation with the original one;
* sigma perturbation — Rahman, Lewis, Plis (GGIG), Sec. 4: ``w' = w + N(0, eps)`` for growing ``eps``;
  the target probability should fall toward ``1/C`` (Property 1) and the explanation's similarity to the
  original toward 0 (Property 2).

Similarity: Spearman rank correlation and SSIM (:mod:`.similarity`). Two doors, one computation:

* the registered metrics ``cascading_randomization`` and ``sigma_perturbation`` consume the Explanation,
  as ``max_sensitivity`` does: ``compute(name, model, None, explanation)`` and ``tfxattr eval --metrics
  cascading_randomization:randomize=block`` re-run the Explanation's method (its options, explained output
  and seed) on the changed model. Scores after the last step, lower is better; every step in
  ``extras["rows"]``;
* :func:`cascading_randomization` and :func:`sigma_perturbation` take the method by name (``method``,
  ``method_options``) and return a :class:`SanityResult`, one row per step.

The model's weights are changed in place and set back exactly when the check ends, however it ends
(:func:`restored_weights`): every step runs through the same adapter (the same explained output,
preprocessing, output selection, precision and traced functions; nothing is retraced). So the model must
be a Keras model, or a ModelAdapter of one.
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Optional, Sequence

import keras
import numpy as np

from ..checks import known_keys, positive_int
from ..inputs import load_images, resolve_targets
from ..methods import Method, get_method
from ..methods.base import check_architecture
from ..models import ModelAdapter, as_model
from .inputs import metric_inputs
from .result import MetricResult
from .similarity import similarity

INITIALIZED = ("kernel", "bias", "depthwise_kernel", "pointwise_kernel", "gamma", "beta", "moving_mean",
               "moving_variance", "embeddings", "recurrent_kernel")
#: what ``randomize`` may name (or give an explicit list of lists of layer names)
RANDOMIZE = ("layer", "block")
# seed offset between randomization steps: above any layer's variable count, so seeds (seed + i) differ per step
STEP_SEED_STRIDE = 1000
#: GGIG Sec. 4's noise levels (standard deviations of the added weight noise), and draws per level
SIGMA_EPS = (0.0, 0.001, 0.01, 0.1, 1.0)
SIGMA_SAMPLES = 3
#: the per-image values a check reports at each step (the metric scores them after the last step)
SIMILARITIES = ("spearman", "spearman_abs", "ssim")


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


@dataclass
class Probe:
    """What a check holds fixed while it changes the model: the adapter (whose Keras model it changes), the
    method it re-runs (with the seed), the images and the targets."""
    adapter: ModelAdapter
    method: Method
    images: np.ndarray
    targets: np.ndarray
    seed: Optional[int]

    @property
    def model(self) -> keras.Model:
        return self.adapter.keras_model

    def explain(self) -> np.ndarray:
        return np.asarray(self.method.attribute(self.adapter, self.images, self.targets, seed=self.seed))

    def probability(self) -> np.ndarray:
        probs = self.adapter.probabilities(self.images)
        return probs[np.arange(len(probs)), self.targets].astype(np.float64)

    def options(self, **check) -> dict:
        """A result's options: the check's own, and the method it re-ran."""
        return {**check, "method": self.method.name, "method_options": dict(self.method.changed)}


def keras_adapter(adapter: ModelAdapter, owner: str) -> ModelAdapter:
    """``adapter`` if it explains a Keras model (whose weights a check can change), else a TypeError."""
    if adapter.keras_model is None:
        raise TypeError(f"{owner}: model {adapter.name!r} must be a keras.Model (the check changes its weights and "
                        "sets them back); a SavedModel or a callable has no weights to change")
    return adapter


@contextlib.contextmanager
def restored_weights(model):
    """Yield the model's weights (NumPy copies); when the block ends, however it ends, set them back."""
    saved = [np.array(w) for w in model.get_weights()]
    try:
        yield saved
    finally:
        model.set_weights(saved)


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
        raise ValueError(f"randomize must be one of {RANDOMIZE} or a list of lists of layer names, got {randomize!r}")
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


def randomize_cascading(probe: Probe, randomize="layer", seed: int = 0) -> SanityResult:
    """Adebayo et al. (2018) cascading randomization of ``probe``'s model (set back afterwards).

    Step 0 is the unmodified model (similarity 1 for a deterministic method); step k has the top k
    groups of :func:`randomization_steps` re-initialised (seeded by ``seed``). Rows: ``spearman``,
    ``spearman_abs``, ``ssim`` to the original explanation, the target ``probability`` and ``score_drop``
    (original minus current probability), averaged over images.
    """
    groups = randomization_steps(probe.model, randomize)
    layers = {layer.name: layer for layer in weighted_layers(probe.model)}
    rows, per_step = [], []
    with restored_weights(probe.model):
        reference, prob0 = probe.explain(), probe.probability()
        for k in range(len(groups) + 1):
            if k:
                for name in groups[k - 1]:
                    reinitialize(layers[name], seed + STEP_SEED_STRIDE * k)
            sims, prob = similarity(reference, probe.explain()), probe.probability()
            label = {"step": k, "layers": "none" if k == 0 else "+".join(groups[k - 1])}
            rows.append(_row(label, sims, prob, prob0))
            per_step.append({**sims, "probability": prob})
    return SanityResult("cascading_randomization", rows, _stack(per_step),
                        probe.options(randomize=randomize, seed=seed), probe.targets)


# -- sigma perturbation -------------------------------------------------------------------------------
def perturb_weights(probe: Probe, eps: Sequence[float] = SIGMA_EPS, samples: int = SIGMA_SAMPLES,
                    relative: bool = False, seed: int = 0) -> SanityResult:
    """GGIG Sec. 4 sigma-perturbation of ``probe``'s model (set back afterwards): add N(0, eps) noise (eps =
    standard deviation) to every trainable weight, ``samples`` times per ``eps``, and average over the draws
    and the images.

    ``relative=True`` scales the noise by each weight tensor's own standard deviation (the paper bounds
    eps by the weights' sigma). Rows: ``eps``, ``probability`` of the target (falls toward ``chance`` =
    1/C), ``score_drop``, and ``spearman``/``spearman_abs``/``ssim`` to the original explanation.
    """
    eps = [float(e) for e in np.atleast_1d(eps)]
    if any(not np.isfinite(e) or e < 0 for e in eps):
        raise ValueError(f"eps must be non-negative numbers, got {eps}")
    positive_int(samples, "samples")
    trainable = {id(v) for v in probe.model.trainable_weights}
    noisy = [id(v) in trainable for v in probe.model.weights]
    rng = np.random.default_rng(seed)
    chance = 1.0 / probe.adapter.num_classes
    rows, per_step = [], []
    with restored_weights(probe.model) as original:
        reference, prob0 = probe.explain(), probe.probability()
        for e in eps:
            results = []
            for _ in range(1 if e == 0 else samples):
                weights = [w + (rng.normal(0.0, e * (w.std() if relative else 1.0), w.shape).astype(w.dtype)
                                if flag and e > 0 else 0) for w, flag in zip(original, noisy)]
                probe.model.set_weights(weights)
                results.append({**similarity(reference, probe.explain()), "probability": probe.probability()})
            probe.model.set_weights(original)
            mean = {k: np.mean([r[k] for r in results], axis=0) for k in results[0]}
            prob = mean.pop("probability")
            rows.append({**_row({"eps": e}, mean, prob, prob0), "chance": chance})
            per_step.append({**mean, "probability": prob})
    return SanityResult("sigma_perturbation", rows, _stack(per_step),
                        probe.options(eps=eps, samples=samples, relative=relative, seed=seed), probe.targets)


def _row(label, sims, prob, prob0):
    return {**label, **{k: float(np.mean(v)) for k, v in sims.items()},
            "probability": float(np.mean(prob)), "score_drop": float(np.mean(prob0 - prob))}


def _stack(per_step):
    keys = per_step[0].keys()
    return {k: np.stack([s[k] for s in per_step]) for k in keys}


# -- a method by name -------------------------------------------------------------------------------------
def _named_probe(check, model, images, method, method_options, targets, batch_size, preprocess, output, seed,
                 unknown) -> Probe:
    """The probe of the function ``check`` below; ``unknown``: its stray keywords, refused (a retired name with
    the name that replaced it, :data:`tfxattr.checks.RENAMED`; any other with the closest ones)."""
    owner = check.__name__
    keywords = [n for n, p in inspect.signature(check).parameters.items() if p.kind is not p.VAR_KEYWORD]
    known_keys(unknown, keywords, "option", f"{owner}()")
    if not isinstance(model, (keras.Model, ModelAdapter)):
        raise TypeError(f"{owner}: model must be a keras.Model or a ModelAdapter of one (the check changes its "
                        f"weights and sets them back), got {type(model).__name__}")
    adapter = keras_adapter(as_model(model, output=output, batch_size=batch_size, preprocess=preprocess), owner)
    method = get_method(method, **dict(method_options or {}))
    check_architecture(method, adapter)
    arr, _ = load_images(images, adapter.input_shape)
    adapter = adapter.for_images(arr)  # as explain(): an assumed pixel range follows the images
    adapter.check_pixels(arr)
    targets = resolve_targets(targets, len(arr), adapter.num_classes, lambda: adapter.scores(arr),
                              class_names=adapter.class_names)
    return Probe(adapter, method, arr, targets, seed)


def cascading_randomization(model, images, method="gradient", targets=None, *, method_options=None,
                            randomize="layer", seed: int = 0, batch_size: int = 32, preprocess=None,
                            output: str = "logit", **unknown) -> SanityResult:
    """Adebayo et al. (2018) cascading randomization (:func:`randomize_cascading`) of ``model`` (a keras.Model
    or a ModelAdapter of one; its weights are set back afterwards) explained by ``method`` with
    ``method_options`` and ``seed``. ``targets`` (None: the top-1 of the unmodified model) stay fixed."""
    probe = _named_probe(cascading_randomization, model, images, method, method_options, targets, batch_size,
                         preprocess, output, seed, unknown)
    return randomize_cascading(probe, randomize, seed)


def sigma_perturbation(model, images, method="gradient", targets=None, *, method_options=None,
                       eps: Sequence[float] = SIGMA_EPS, samples: int = SIGMA_SAMPLES, relative: bool = False,
                       seed: int = 0, batch_size: int = 32, preprocess=None, output: str = "logit",
                       **unknown) -> SanityResult:
    """GGIG Sec. 4 sigma-perturbation (:func:`perturb_weights`) of ``model`` (a keras.Model or a ModelAdapter of
    one; its weights are set back afterwards) explained by ``method`` with ``method_options`` and ``seed``;
    ``samples`` noise draws per ``eps``."""
    probe = _named_probe(sigma_perturbation, model, images, method, method_options, targets, batch_size,
                         preprocess, output, seed, unknown)
    return perturb_weights(probe, eps, samples, relative, seed)


# -- the registered metrics -------------------------------------------------------------------------------
def _explanation_probe(name, model, images, maps, targets, masks, batch_size) -> Probe:
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size, consumes="explanation",
                           metric=f"metric {name!r}")
    adapter = keras_adapter(inputs.adapter, f"metric {name!r}")
    return Probe(adapter, inputs.method(), inputs.images, inputs.targets, inputs.seed)


def _as_metric(res: SanityResult) -> MetricResult:
    """The last step's per-image similarities and target probability, lower is better; every step in extras."""
    scores = {k: res.per_image[k][-1].astype(np.float64) for k in (*SIMILARITIES, "probability")}
    return MetricResult(res.name, scores, {k: False for k in scores}, aggregation="mean", options=res.options,
                        targets=res.targets, extras={"rows": res.rows, "per_step": res.per_image})


def cascading_randomization_metric(model, images, maps, targets=None, masks=None, batch_size=32, *,
                                   randomize="layer", seed=0) -> MetricResult:
    """Adebayo et al. cascading randomization of the model, re-running the Explanation ``maps``' method.

    Scores "spearman", "spearman_abs", "ssim" (similarity of the fully randomised model's explanation to the
    original) and "probability" (its target probability), lower is better; ``extras["rows"]`` has every
    step. ``randomize``: "layer", "block" or lists of layer names; ``seed`` seeds the re-initialisation.
    ``masks`` is not used."""
    probe = _explanation_probe("cascading_randomization", model, images, maps, targets, masks, batch_size)
    return _as_metric(randomize_cascading(probe, randomize, seed))


def sigma_perturbation_metric(model, images, maps, targets=None, masks=None, batch_size=32, *, eps=SIGMA_EPS,
                              samples=SIGMA_SAMPLES, relative=False, seed=0) -> MetricResult:
    """GGIG sigma-perturbation of the model's weights, re-running the Explanation ``maps``' method.

    Scores "spearman", "spearman_abs", "ssim" (similarity to the original explanation) and "probability"
    (target probability, toward 1/C) at the last ``eps`` (the largest, in increasing order), lower is better;
    ``extras["rows"]`` has every eps. ``samples`` noise draws per eps, seeded by ``seed``. ``masks`` is not used."""
    probe = _explanation_probe("sigma_perturbation", model, images, maps, targets, masks, batch_size)
    return _as_metric(perturb_weights(probe, eps, samples, relative, seed))
