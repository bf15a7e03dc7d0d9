"""Offline ImageNet-1k class names in Keras model output order.

Data: ``imagenet_classes.json`` next to this file: wnids with their WordNet lemmas, from the
timm 1.0.31 wheel on PyPI (timm/data/_info/imagenet_synsets.txt, imagenet_synset_to_lemma.txt;
Apache-2.0; lemmas are WordNet 3.0 data, Princeton WordNet licence). The wnid order equals
tensorflow_datasets' imagenet2012/labels.txt. Provenance and licence are repeated in the file.
"""
from __future__ import annotations

import functools
import json
import os
from typing import List, Tuple

import numpy as np

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.json")


@functools.lru_cache(maxsize=1)
def _classes() -> Tuple[Tuple[str, str, str], ...]:
    with open(_DATA, encoding="utf-8") as f:
        rows = json.load(f)["classes"]
    if len(rows) != 1000:
        raise RuntimeError(f"{_DATA} has {len(rows)} classes, expected 1000")
    return tuple(tuple(r) for r in rows)


def wnids() -> List[str]:
    """The 1000 WordNet ids (e.g. "n01440764") in model output order."""
    return [r[0] for r in _classes()]


def class_names(unique: bool = True) -> List[str]:
    """The 1000 ImageNet class names in model output order (no network access).

    Names follow Keras' ``decode_predictions`` ("tench", "great_white_shark", ...). Keras has two
    ambiguous pairs ("crane" x2, "maillot" x2); with ``unique=True`` those four get their wnid
    appended, e.g. "crane (n02012849)"; ``unique=False`` gives Keras' names exactly.
    """
    names = [r[1] for r in _classes()]
    if not unique:
        return names
    counts = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [f"{n} ({w})" if counts[n] > 1 else n for n, w in zip(names, wnids())]


def lemmas() -> List[str]:
    """The full WordNet lemma string of each class (e.g. "tench, Tinca tinca")."""
    return [r[2] for r in _classes()]


def decode_predictions(preds, top: int = 5):
    """Offline ``keras.applications.imagenet_utils.decode_predictions``: [(wnid, name, score), ...] per row."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f"expected predictions of shape (N, 1000), got {preds.shape}")
    ids, names = wnids(), class_names()
    out = []
    for row in preds:
        idx = np.argsort(row)[::-1][:top]
        out.append([(ids[i], names[i], float(row[i])) for i in idx])
    return out
