"""Example maps of an evaluation report: for each (model, method), the images it scored best and worst on by
the main score, with the maps drawn again.

The store keeps scores and curves, not maps (a map per image, method and model would outgrow the results
many times over). So the few example images are read again from the run's data, fitted to the model as the
runner fits them, and attributed again by the stored method label, seed, target and channel reduction
(:mod:`.shards` does the same): deterministic methods give the scored maps exactly, random ones (noise,
random masks) draw with the run's seed on a smaller batch, so their example maps may differ from the
scored ones in the noise. A model or data set that cannot be loaded again by its stored name (a model
object, in-memory arrays, a tfds set without its data_dir) gets a note saying why instead of maps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

#: images shown at each end of a method's ranking (the best ones, then the worst ones)
EXAMPLES_PER_END = 2
#: images read at a time while looking for the examples in the data
READ_CHUNK = 256
#: what can go wrong loading a model or data again by name: told in the report, not raised
LOAD_ERRORS = (ValueError, TypeError, OSError, KeyError, IndexError)


@dataclass
class Example:
    """One image of a method's ranking: its id, explained class, main-score value and place ("best 1")."""
    image: str
    target: int
    value: float
    place: str


@dataclass
class ExampleMaps:
    """What the report shows: ``figures`` (model, method) -> a matplotlib Figure of its examples, and
    ``notes``: why some could not be drawn."""
    metric: str
    score: str
    higher_is_better: bool
    figures: Dict[Tuple[str, str], object] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def main_score(view) -> Optional[Tuple[str, str, bool]]:
    """(metric, score, higher is better) that ranks the examples: the first score of the first metric of the
    run (the first one the user listed); None without metrics."""
    for metric, info in view.metrics.items():
        for score, higher in info["higher_is_better"].items():
            return metric, score, bool(higher)
    return None


def pick_examples(view, metric: str, score: str, higher: bool, per_end: int = EXAMPLES_PER_END
                  ) -> Dict[Tuple[str, str], List[Example]]:
    """(model, method) -> its best ``per_end`` images, then its worst ``per_end`` (fewer images: all of them,
    best first), by ``score`` of ``metric`` (one streaming pass over the results)."""
    scored: Dict[Tuple[str, str], List[Tuple[float, str, int]]] = {}
    for r in view.results:
        value = r["scores"].get(metric, {}).get(score)
        if value is not None and np.isfinite(value):
            scored.setdefault((r["model"], r["method"]), []).append((float(value), r["image"], int(r["target"])))
    picks = {}
    for key, items in scored.items():
        items.sort(key=lambda item: (-item[0] if higher else item[0], item[1]))  # best first, then by image id
        n = len(items)
        if n <= 2 * per_end:
            places = [(i, f"rank {i + 1} of {n}") for i in range(n)]
        else:  # the worst last: best 1, best 2, ..., worst 2, worst 1
            places = [(i, f"best {i + 1}") for i in range(per_end)] + \
                [(i, f"worst {n - i}") for i in range(n - per_end, n)]
        picks[key] = [Example(items[i][1], items[i][2], items[i][0], place) for i, place in places]
    return picks


def example_maps(view, data=None, batch_size: int = 32) -> ExampleMaps:
    """Draw the examples of every (model, method) of the store (module docstring). ``data``: the run's data
    (a data string or a Source) when the store's name of it cannot be read again (default: the stored name)."""
    found = main_score(view)
    if found is None:
        return ExampleMaps("", "", True, notes=["no metric in the store: no examples to rank"])
    result = ExampleMaps(*found)
    picks = pick_examples(view, *found)
    if not picks:
        result.notes.append(f"no image has a {result.score} score: no examples to draw")
        return result
    try:
        images = _read_images(data if data is not None else view.config.get("data"),
                              {e.image for examples in picks.values() for e in examples})
    except LOAD_ERRORS as err:
        result.notes.append(f"example maps not drawn: the data {view.config.get('data')!r} could not be read "
                            f"again ({_first_line(err)})")
        return result
    for model in dict.fromkeys(model for model, _ in picks):
        try:
            loaded = _load(model, view.config, batch_size)
        except LOAD_ERRORS as err:
            result.notes.append(f"{model}: example maps not drawn, the model could not be loaded again by its "
                                f"name ({_first_line(err)})")
            continue
        for (m, method), examples in picks.items():
            if m != model:
                continue
            missing = [e.image for e in examples if e.image not in images]
            if missing:
                result.notes.append(f"{model} / {method}: image(s) {missing} are not in the data (the run scored "
                                    "images made from it, e.g. grids)")
                continue
            try:
                result.figures[(model, method)] = _figure(loaded, method, examples, images, view.config, result)
            except LOAD_ERRORS as err:
                result.notes.append(f"{model} / {method}: example maps not drawn ({_first_line(err)})")
    return result


def _first_line(err) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _read_images(data, ids) -> Dict[str, np.ndarray]:
    """image id -> its uint8 image, reading the data chunk by chunk until every id in ``ids`` is found."""
    from .datasets import load_data

    if data is None:
        raise ValueError("the store does not name its data")
    if isinstance(data, str) and data.startswith("tfds:") and "/" in data:  # a TfdsSource's name: "tfds:x/split"
        name, _, split = data.rpartition("/")
        source = load_data(name, split=split, download=False)
    else:
        source = load_data(data, download=False)
    images = {}
    for chunk in source.chunks(READ_CHUNK):
        images.update((i, im) for i, im in zip(chunk.ids, chunk.images) if i in ids)
        if len(images) == len(ids):
            break
    return images


def _load(model: str, config: dict, batch_size: int):
    from .loading import load_model

    ranges = {k: None if config.get(k) is None else tuple(config[k]) for k in ("pixel_range", "input_range")}
    return load_model(model, batch_size=batch_size, class_names=config.get("class_names"), **ranges)


def _figure(loaded, method_label: str, examples: List[Example], images, config: dict, result: ExampleMaps):
    """The examples of one method on one model: the images fitted to the model, then their maps."""
    from ..figures import MapRow, map_grid
    from ..methods import get_method
    from ..reduction import reduce_channels, reduction_label, resolve_reduction
    from ..specs import parse_spec
    from .datasets import fit_to_input

    spec = parse_spec(method_label, "method")
    method = get_method(spec.name, **spec.options)
    raw = [images[e.image] for e in examples]
    h, w = loaded.adapter.input_shape[:2]
    x, _ = fit_to_input(raw, (h, w) if h is not None and w is not None else raw[0].shape[:2],
                        config.get("resize", "crop"))
    adapter = loaded.adapter.for_images(x)
    targets = np.array([e.target for e in examples], np.int32)
    attribution = np.asarray(method.attribute(adapter, x, targets, progress=False, seed=config.get("seed", 0)))
    reduction = config.get("reduce", "auto")
    names = adapter.class_names
    titles = [f"{e.place}: {e.image}" for e in examples]
    map_titles = [f"{names[e.target] if names and e.target < len(names) else e.target}\n"
                  f"{result.score} {e.value:.3f}" for e in examples]
    channels = attribution.shape[-1]
    row = MapRow(reduce_channels(attribution, reduction), map_titles, resolve_reduction(reduction, channels),
                 reduction_label(reduction, channels))
    return map_grid(x, titles, [row], adapter.pixel_range)
