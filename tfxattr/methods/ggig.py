"""Geometrically Guided Integrated Gradients (Rahman, Lewis, Plis; Algorithm 1): an ascent path plus
the per-feature maximum.

From each of ``steps`` points ``b + k/(steps-1) (x - b)`` on the straight line, take
``ascent_steps`` steps of gradient ascent on the class score, ``z <- z + lr * grad``, recording the
gradient before every step (:class:`~tfxattr.paths.adaptive.AscentPath`); the attribution is the per-feature
(signed, per-channel) maximum of all recorded gradients (:class:`~tfxattr.paths.aggregators.MaxGradient`,
line 10). No ``(x - b)`` factor (Sec. 3).

As in the authors' code, everything happens in the space of the tensor the network sees: after
``preprocess`` and the model's leading Rescaling/Normalization layers
(:meth:`~tfxattr.models.ModelAdapter.network_view`). So ``lr`` is a step in that space (lr 1e-4 on
0..255 pixels would not move an image at all), the same network with its normalisation inside the
model or in ``preprocess`` gives the same map, and the attribution is the network-space gradient.
The default baseline ``"network_zero"`` is the authors' reference: zero in that space (the mean
colour for mean-centred inputs); other baselines are pixel images mapped through the same
preprocessing. The engine walks all (image, point) pairs in chunks of ``batch_size``.
"""
from __future__ import annotations

import tensorflow as tf

from ..batching import chunk_map, rows
from ..checks import positive_float, positive_int
from ..paths.adaptive import AscentPath
from ..paths.aggregators import get_aggregator
from ..paths.engine import integrate
from .path import PathMethod

NETWORK_ZERO = "network_zero"  # the zero of the network's input tensor (after normalisation)


class GGIG(PathMethod):
    name = "ggig"
    summary = "Geometrically Guided IG: per-pixel max of gradients during ascent (in the network's input space)"
    aggregators = ("max",)
    defaults = {"aggregator": "max", "steps": 20, "ascent_steps": 10, "lr": 1e-4, "baseline": NETWORK_ZERO,
                "blur_sigma": 20.0}

    def validate(self):
        super().validate()
        positive_int(self.options["steps"], "steps")
        positive_int(self.options["ascent_steps"], "ascent_steps")
        positive_float(self.options["lr"], "lr", allow_zero=True)

    def path_start(self, evaluator, images):
        """None: the ascent walks from ``steps`` starts and the attribution is a max, not a path integral."""
        return None

    def make_path(self, evaluator, images):
        o = self.options
        return AscentPath(starts=o["steps"], steps=o["ascent_steps"], lr=o["lr"])

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        to_network, network = evaluator.network_view()
        n = rows(images)
        z = _mapped(to_network, images, n, evaluator.batch_size)
        if tuple(z.shape[1:]) != tuple(images.shape[1:]):
            raise ValueError(f"{self.name} ascends in the network's input space, which must have the images' shape "
                             f"{tuple(images.shape[1:])}; the preprocessing makes it {tuple(z.shape[1:])}")
        if self.options["baseline"] == NETWORK_ZERO:
            z_b = tf.zeros_like(z)
        else:
            z_b = _mapped(to_network, self.baselines(evaluator, images), n, evaluator.batch_size)
        return integrate(network, self.make_path(evaluator, images), get_aggregator(self.options["aggregator"]),
                         z, z_b, targets, evaluator.batch_size, progress=progress, desc=self.name)


def _mapped(fn, images, n, batch_size) -> tf.Tensor:
    """``fn`` (pixels -> the network's input) over ``images`` in chunks of ``batch_size``."""
    (z,) = chunk_map(lambda x: (tf.cast(fn(x), tf.float32),), [tf.float32], n, batch_size,
                     tf.convert_to_tensor(images, tf.float32))
    return tf.ensure_shape(z, [None] + list(images.shape[1:])) if not tf.executing_eagerly() else z
