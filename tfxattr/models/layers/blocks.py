"""Layer names a user may write besides a model's own: ``"input"``, and the ``"last_block"`` /
``"penultimate_block"`` that IIA, Grad-CAM and the learned explainer use (a Keras application's from
``keras_apps``, else found in the model's valid split points, :mod:`~tfxattr.models.layers.graph`)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from .graph import layer_graph, valid_list

INPUT = "input"  # the model input (pixels, before the adapter's preprocess) in layer lists
BLOCKS = ("last_block", "penultimate_block")  # the blocks IIA, Grad-CAM and the learned explainer use


def default_blocks(model, app: Optional[str] = None, hint: Optional[str] = None) -> Tuple[str, str]:
    """``(last_block, penultimate_block)`` paths of ``model``.

    A Keras application (``app`` names it; otherwise the model's, a nested model's or ``hint``'s
    name is looked up in ``keras_apps``) gets its ``keras_apps`` blocks. Any other model: the last
    valid 4-D split point, and before it the last valid 4-D split point of a larger spatial size
    (one resolution stage earlier), else the previous valid 4-D split point.
    """
    graph = layer_graph(model)
    found = _app_blocks(graph, app, hint)
    if found is not None:
        return found
    valid = graph.valid_names(ndim=4)
    area = {p: spatial_area(graph.shapes[graph.names[p][0]]) for p in valid}
    spatial = [p for p in valid if area[p] != 1] or valid
    if not spatial:
        raise ValueError(f"model {graph.model_name!r} has no valid split layer with a 4-D (N, H, W, C) output; "
                         f"name one explicitly. {valid_list(graph.valid_names())}")
    last = spatial[-1]
    before = valid[:valid.index(last)]
    larger = [p for p in before if None not in (area[p], area[last]) and area[p] > area[last]]
    penultimate = larger[-1] if larger else (before[-1] if before else last)
    return last, penultimate


def resolve_layers(model, names: Sequence[str], app: Optional[str] = None, hint: Optional[str] = None,
                   ndim: Optional[int] = None) -> List[str]:
    """Full paths of ``names``; ``"last_block"``/``"penultimate_block"`` become the model's blocks,
    ``"input"`` stays ``"input"``. An unknown name's error lists the valid split layers (``ndim``-D ones)."""
    graph = layer_graph(model)
    blocks = None
    out = []
    for name in names:
        if name == INPUT:
            out.append(INPUT)
        elif name in BLOCKS:
            blocks = blocks or default_blocks(model, app, hint)
            out.append(blocks[BLOCKS.index(name)])
        else:
            out.append(graph.resolve(name, ndim))
    return out


def _app_blocks(graph, app, hint):
    try:
        import keras_apps
    except ImportError:  # pragma: no cover - keras_apps ships with tfxattr
        return None
    if app is not None:
        spec = keras_apps.get(app)
        for prefix in _prefixes(graph):
            if _has_blocks(graph, prefix, spec):
                return prefix + spec.last_block, prefix + spec.penultimate_block
        raise ValueError(f"app={app!r}: the model has no layers {spec.last_block!r} and {spec.penultimate_block!r} "
                         f"(nested models: {sorted(graph.nested) or 'none'})")
    candidates = [("", graph.model_name)] + [(p + "/", n) for p, n in graph.nested.items()]
    if hint is not None:
        candidates.append(("", hint))
    for prefix, name in candidates:
        for key in (name, name.split("_")[0]):
            try:
                spec = keras_apps.get(key)
            except ValueError:
                continue
            if _has_blocks(graph, prefix, spec):
                return prefix + spec.last_block, prefix + spec.penultimate_block
    return None


def _prefixes(graph):
    return [""] + [p + "/" for p in graph.nested]


def _has_blocks(graph, prefix, spec):
    return all(len(graph.names.get(prefix + b, ())) == 1 for b in (spec.last_block, spec.penultimate_block))


def spatial_area(shape) -> Optional[int]:
    """H * W of an (N, H, W, C) shape, None when either is free."""
    h, w = shape[1], shape[2]
    return None if h is None or w is None else h * w

