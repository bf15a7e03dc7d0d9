"""The grid layout: cells to grid and back (Keras layers, and NumPy for building images), and the
(cell, class) output index.

Cells are numbered row-major from the top-left (0) to the bottom-right (``n*n - 1``); a multi-head
(DiFull/DiPart) model's output index of "class ``c`` at cell ``i``" is ``i * K + c``.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops


def grid_target(cell, cls, num_classes: int):
    """Output index of "class ``cls`` at cell ``cell``" in a DiFull/DiPart model: ``cell * K + cls``."""
    cell, cls = np.asarray(cell), np.asarray(cls)
    if np.any(cls < 0) or np.any(cls >= num_classes) or np.any(cell < 0):
        raise ValueError(f"cls must lie in [0, {num_classes}) and cell must be >= 0, got cell={cell}, cls={cls}")
    return cell * num_classes + cls


def cell_and_class(target, num_classes: int):
    """Inverse of :func:`grid_target`: ``(cell, class)`` of a DiFull/DiPart output index."""
    return np.divmod(np.asarray(target), num_classes)


def tile_cells(cells: np.ndarray) -> np.ndarray:
    """(G, n*n, h, w, C) cells, row-major -> (G, n*h, n*w, C) grid images (NumPy :class:`CellsToGrid`)."""
    g, k, h, w, c = cells.shape
    n = int(round(np.sqrt(k)))
    if n * n != k:
        raise ValueError(f"the number of cells must be a square, got {k}")
    return cells.reshape(g, n, n, h, w, c).transpose(0, 1, 3, 2, 4, 5).reshape(g, n * h, n * w, c)


class _GridLayer(keras.layers.Layer):
    """A layer of an ``n x n`` grid: keeps ``n`` and serializes it."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


@keras.saving.register_keras_serializable(package="tfxattr")
class GridToCells(_GridLayer):
    """(B, n*h, n*w, C) -> (B*n*n, h, w, C): cells stacked along the batch axis, row-major."""

    def call(self, x):
        n, (height, width, channels) = self.n, x.shape[1:]
        h, w = height // n, width // n
        x = ops.reshape(x, (-1, n, h, n, w, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h, w, channels))

    def compute_output_shape(self, shape):
        return (None, shape[1] // self.n, shape[2] // self.n, shape[3])


@keras.saving.register_keras_serializable(package="tfxattr")
class CellsToGrid(_GridLayer):
    """(B*n*n, h, w, C) -> (B, n*h, n*w, C): the inverse of :class:`GridToCells`."""

    def call(self, x):
        n, (h, w, channels) = self.n, x.shape[1:]
        x = ops.reshape(x, (-1, n, n, h, w, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, n * h, n * w, channels))

    def compute_output_shape(self, shape):
        return (None, shape[1] * self.n, shape[2] * self.n, shape[3])


@keras.saving.register_keras_serializable(package="tfxattr")
class CellLogits(_GridLayer):
    """(B*n*n, K) per-cell logits -> (B, n*n*K), index ``cell * K + class``."""

    def call(self, x):
        return ops.reshape(x, (-1, self.n * self.n * x.shape[-1]))

    def compute_output_shape(self, shape):
        return (None, self.n * self.n * shape[-1])
