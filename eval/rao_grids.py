"""Rao, Böhle, Schiele (CVPR 2022): GridPG / DiFull / DiPart localization at the input, middle and final layer.

Paper settings (the defaults): 2x2 grids of classifier-sized cells taken from images the model classifies
correctly with confidence >= 0.99; GridPG evaluates every cell, DiFull / DiPart the top-left and
bottom-right cells (same class, different images). Score: Rao's Eq. 2 localization (positive attribution in
the cell / all positive attribution), median and IQR over grids as in their box plots; AggAtt figures of
the top-left cell per (setting, layer). Methods: Grad (|gradient|), IxG, IntGrad; add S-IntGrad / S-IxG with
e.g. "ig:smooth_kernel=129". The paper's VGG11 / ResNet18 are not Keras applications: VGG16 and ResNet50V2
stand in. GridPG slides VGG16's Flatten + Dense head over the grid's 14x14 feature map as a 7x7 "classifier
kernel" (stride 1) and averages the 64 window logits, as Rao et al.'s code does for VGG11
(tfxattr.metrics.grids.dense_head); a model with neither global pooling nor such a head is squeezed to its
input size (resize=True), which is a different setting and is noted in the report.
Under DiFull every gradient-based method at the input must localize exactly 1.0.

    python eval/rao_grids.py --manual-dir ~/imagenet --limit 2000
    python eval/rao_grids.py --models demo --data shapes:60 --steps 16
"""
from __future__ import annotations

import glob
import os

import numpy as np

import common

METHODS = ("gradient", "gradient:times_input=True", "ig")
COLUMNS = {"gradient": "Grad", "gradient:times_input=True": "IxG", "ig": "IntGrad"}
SETTINGS = ("gridpg", "difull", "dipart")
LAYERS = ("input", "middle", "final")
MAP_SIDE = 128  # maps kept for AggAtt are average-pooled to about this size
BATCH_FILE = 128  # entries per maps file (a file is rewritten as its batches finish)


def main(argv=None):
    from tfxattr.metrics.grids import AGGATT_EDGES

    p = common.parser(__doc__.splitlines()[0], ["vgg16", "resnet50v2"], "runs/rao_grids", steps=50,
                      steps_help="IntGrad steps")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help="method specs (smooth_kernel=K: S- variants)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    p.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    p.add_argument("--threshold", type=float, default=0.99, help="confidence a cell's image needs")
    p.add_argument("--grid-size", type=int, default=2, help="n of the n x n grids")
    p.add_argument("--num-grids", type=int, default=None, help="grids per setting (default: ~one use per image)")
    p.add_argument("--aggatt-edges", default=",".join(f"{e:g}" for e in AGGATT_EDGES),
                   help="AggAtt bin edges (fractions of the maps sorted by score)")
    args = p.parse_args(argv)
    common.announce(args)
    if common.random_weights(args):
        print("note: random weights classify nothing correctly and confidently: the grids take the images in "
              "order with their data labels (no correctness / confidence filter), a pipeline check only")
    edges = tuple(float(e) for e in args.aggatt_edges.split(","))
    methods = [common.with_steps(m, args.steps) for m in args.methods]
    with common.data_context(args):
        source = common.load_source(args)
        run_all(args, source, methods, edges)


def run_all(args, source, methods, edges):
    from tfxattr.evaluation import STORE_NAME, ResultStore, check_config, load_model, parse_spec
    from tfxattr.evaluation.report import write_report
    from tfxattr.methods import get_method

    for m in methods:  # fail early on a bad method or option
        spec = parse_spec(m, "method")
        get_method(spec.name, **{k: v for k, v in spec.options.items() if k != "smooth_kernel"})
    os.makedirs(args.out, exist_ok=True)
    store_path = os.path.join(args.out, STORE_NAME)
    config = {"data": source.name, "kind": "rao_grids", "threshold": args.threshold, "n": args.grid_size,
              "num_grids": args.num_grids}
    notes, figures = [], []
    with ResultStore(store_path) as store:
        check_config(store, config)
        for model in args.models:
            loaded = load_model(model, args.weights, args.batch_size)
            if loaded.adapter.keras_model is None:
                raise ValueError(f"model {loaded.label!r}: grid settings need a keras.Model")
            images, labels = _fitted(source, loaded.adapter)
            for setting in args.settings:
                figures += _run_setting(args, store, loaded, setting, images, labels, methods, edges, notes)
    aggatt_md = "\n".join(["## AggAtt (top-left cell)", ""] + [f"![{f}]({f})" for f in figures] + [""] +
                          [f"- {n}" for n in notes])
    report = write_report(store_path, args.out, title="Rao et al. grid localization", extra_markdown=aggatt_md)
    _tables(args, store_path, methods, notes, report)


def _fitted(source, adapter):
    """All images fitted to the model (uint8) and their labels."""
    from tfxattr.evaluation import fit_to_input

    if not source.has_labels:
        raise ValueError(f"data {source.name!r} has no labels: grid settings need the class of every cell")
    images, labels = [], []
    for chunk in source.chunks(256):
        x, _ = fit_to_input(chunk.images, adapter.input_shape[:2])
        images.append(x.astype(np.uint8))
        labels.append(chunk.labels)
    return np.concatenate(images), np.concatenate(labels)


def _run_setting(args, store, loaded, setting, images, labels, methods, edges, notes):
    from tfxattr.metrics.grids import build_setting, make_grid_dataset, rao_layers

    adapter, keras_model = loaded.adapter, loaded.adapter.keras_model
    built = build_setting(keras_model, setting, args.grid_size, resize=True, preprocess=adapter.preprocess,
                          pixel_range=adapter.pixel_range)
    if built.model.name == "gridpg_resized":
        notes.append(f"{loaded.label} {setting}: the model cannot take the grid; it is squeezed to the input size")
    try:
        if loaded.random_weights:
            data = _unfiltered_grids(images, labels, setting, args.grid_size, args.num_grids)
        else:
            data = make_grid_dataset(keras_model, images, labels, setting, args.grid_size, args.num_grids,
                                     args.threshold, seed=0, batch_size=args.batch_size, preprocess=adapter.preprocess)
    except ValueError as err:
        notes.append(f"{loaded.label} {setting}: skipped, {err} ({len(images)} images read)")
        print(f"note: {notes[-1]}")
        return []
    layers = rao_layers(keras_model)
    figures = []
    for role in args.layers:
        label = f"{loaded.label}|{setting}|{role}"
        maps_by_method = {}
        for method in methods:
            maps_by_method[method] = _score(args, store, label, built, data, layers[role], method)
        store.append({"kind": "model", "model": label, "weights": loaded.weights,
                      "random_weights": loaded.random_weights, "input_shape": list(built.grid_shape),
                      "images": len(images), "correct": None, "correct_only": False, "excluded": [],
                      "layer": layers[role], "grids": int(len(data.images)), "entries": len(data)})
        figures += _aggatt(args, label, data, built.n, maps_by_method, edges, notes)
    return figures


def _unfiltered_grids(images, labels, setting, n, num_grids):
    """Pipeline-check grids (random weights): consecutive images, their own labels, no filter."""
    from tfxattr.metrics.grids import GridDataset, tile_cells

    cells = n * n
    num_grids = num_grids or max(1, len(images) // cells)
    sources = np.arange(num_grids * cells).reshape(num_grids, cells) % len(images)
    evaluated = np.arange(cells) if setting == "gridpg" else np.array([0, cells - 1])
    grid, cell = np.repeat(np.arange(num_grids), len(evaluated)), np.tile(evaluated, num_grids)
    return GridDataset(setting, n, tile_cells(images[sources]), labels[sources], sources, grid, cell,
                       labels[sources][grid, cell], 0.0, np.arange(len(images)))


def _score(args, store, label, setting, data, layer, method):
    """Localization of every (grid, cell) entry; maps (pooled) kept on disk for AggAtt. Returns the maps dir."""
    from tfxattr.evaluation import json_safe, parse_spec
    from tfxattr.metrics.grids import grid_localization, layer_maps

    spec = parse_spec(method, "method")
    options = dict(spec.options)
    smooth = options.pop("smooth_kernel", None)
    targets = data.targets(setting)
    ids = [f"grid{g:05d}/cell{c}" for g, c in zip(data.grid, data.cells)]
    maps_dir = os.path.join(args.out, "maps", _safe(f"{label}__{spec.label}"))
    todo = {i for i in range(len(data)) if (label, spec.label, ids[i], int(targets[i])) not in store.done}
    for start in range(0, len(data), args.images_per_batch):
        idx = np.array([i for i in range(start, min(start + args.images_per_batch, len(data))) if i in todo], int)
        if len(idx) == 0:
            continue
        grids = data.images[data.grid[idx]]
        maps = layer_maps(setting, grids, targets[idx], spec.name, layer=layer, smooth_kernel=smooth,
                          batch_size=args.batch_size, seed=0, **options)
        result = grid_localization(None, grids, maps, cells=data.cells[idx], n=setting.n)
        _save_maps(maps_dir, idx, maps, setting.n)
        if ("metric", "grid_localization") not in store.named:
            store.append({"kind": "metric", "metric": "grid_localization", "name": "grid_localization",
                          "options": json_safe(result.options), "aggregation": result.aggregation,
                          "higher_is_better": dict(result.higher_is_better), "curves": {}})
        scores = json_safe(result.scores["localization"])
        for j, i in enumerate(idx):
            store.append({"kind": "result", "model": label, "method": spec.label, "image": ids[i],
                          "target": int(targets[i]), "label": int(data.classes[i]), "predicted": None,
                          "probability": None, "seconds": None, "layer": layer,
                          "scores": {"grid_localization": {"localization": scores[j]}},
                          "skipped": {"grid_localization": {}}, "curves": {}})
    return maps_dir


def _column(method: str) -> str:
    """Rao's name of a method spec ("ig:steps=50" -> "IntGrad"; S- prefix when smoothed)."""
    from tfxattr.evaluation import Spec, parse_spec

    spec = parse_spec(method)
    core = {k: v for k, v in spec.options.items() if k not in ("steps", "smooth_kernel")}
    name = COLUMNS.get(Spec(spec.name, core).label, Spec(spec.name, core).label)
    return ("S-" + name + f" (K={spec.options['smooth_kernel']})") if "smooth_kernel" in spec.options else name


def _safe(text):
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in text)


def _save_maps(maps_dir, idx, maps, n):
    """Average-pool (cell sums are kept) and add to ``<maps_dir>/<index // BATCH_FILE>.npz`` atomically."""
    h, w = maps.shape[1:]
    f = max(1, h // MAP_SIDE)
    while f > 1 and ((h // n) % f or (w // n) % f):
        f -= 1
    pooled = maps.reshape(len(maps), h // f, f, w // f, f).mean(axis=(2, 4)).astype(np.float32)
    os.makedirs(maps_dir, exist_ok=True)
    path = os.path.join(maps_dir, f"{idx[0] // BATCH_FILE:06d}.npz")
    if os.path.exists(path):  # a resumed batch: keep the maps of the entries done before the kill
        with np.load(path) as old:
            keep = ~np.isin(old["index"], idx)
            idx, pooled = np.concatenate([old["index"][keep], idx]), np.concatenate([old["maps"][keep], pooled])
    np.savez(path + ".tmp.npz", index=idx, maps=pooled)
    os.replace(path + ".tmp.npz", path)


def _load_maps(maps_dir, count):
    maps = None
    for path in sorted(glob.glob(os.path.join(maps_dir, "[0-9]*.npz"))):
        with np.load(path) as z:
            if maps is None:
                maps = np.full((count,) + z["maps"].shape[1:], np.nan, np.float32)
            maps[z["index"]] = z["maps"]
    return maps


def _aggatt(args, label, data, n, maps_dirs, edges, notes):
    from tfxattr.metrics.grids import aggatt, save_aggatt_png

    results = {}
    for method, maps_dir in maps_dirs.items():
        maps = _load_maps(maps_dir, len(data))
        if maps is None or np.isnan(maps).any():
            notes.append(f"{label} {method}: maps missing on disk, no AggAtt")
            continue
        try:
            results[_column(method)] = aggatt(maps, data.cells, n, cell=0, edges=edges)
        except ValueError as err:
            notes.append(f"{label} {method}: no AggAtt ({err}; or pass coarser --aggatt-edges)")
    if not results:
        return []
    rel = os.path.join("aggatt", _safe(label) + ".png")
    save_aggatt_png(results, os.path.join(args.out, rel))
    return [rel]


def _tables(args, store_path, methods, notes, report):
    from tfxattr.evaluation.report import fmt, markdown_table
    from tfxattr.evaluation.summary import load_store, summarize

    rows = [r for r in summarize(load_store(store_path)) if r.metric == "grid_localization"]
    sections = []
    for model in dict.fromkeys(r.model.split("|")[0] for r in rows):
        mine = [r for r in rows if r.model.split("|")[0] == model]
        cells = {(r.model, r.method): r for r in mine}
        keys = list(dict.fromkeys(r.model for r in mine))
        body = [k.split("|")[1:] + [f"{fmt(cells[(k, m)].median)} [{fmt(cells[(k, m)].q1)}, {fmt(cells[(k, m)].q3)}]"
                                    if (k, m) in cells else "–" for m in methods] for k in keys]
        header = ["setting", "layer"] + [_column(m) for m in methods]
        sections.append((f"{model}: localization, median [IQR] over grid cells (chance 1/{args.grid_size ** 2})",
                         markdown_table(header, body)))
    common.write_tables(args, args.out, "rao_grids.md", "Rao et al. GridPG / DiFull / DiPart (reproduction)",
                        sections, notes="\n".join([f"Full report with AggAtt: {report}"] + [f"- {n}" for n in notes]))


if __name__ == "__main__":
    raise SystemExit(common.main_guard(main))
