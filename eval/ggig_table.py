"""Reproduce GGIG (Rahman, Lewis, Plis) Table 2: SIC and AIC on ImageNet for InceptionV3 and ResNet-101.

Methods: gradients, integrated gradients, GGIG with the paper's ImageNet preset (51 interpolation points x
100 ascent steps, lr 1e-4), and the paper's two reference maps: an edge detector (Sobel magnitude of the
grey image) and a random map. Metric: SIC / AIC with PAIR's notebook settings and the information level =
Shannon entropy of the grey image (GGIG Sec. 5); SIC median, AIC mean over images. The paper's ResNet-101
is v1, which the Keras applications here do not include: ResNet101V2 stands in. The paper does not give
its IG step count; 200 is used.

    python eval/ggig_table.py --manual-dir ~/imagenet --limit 500
    python eval/ggig_table.py --models demo --data shapes:20 --steps 8 --ascent-steps 20
"""
from __future__ import annotations

import numpy as np

import common
from tfxattr.methods import Method

COLUMNS = {"gradient": "Gradients", "ig": "Integrated Gradients", "ggig_paper": "GGIG", "edge": "Edge Detector",
           "random": "Random"}
AGGREGATION = {"sic": "median", "aic": "mean"}


class EdgeDetector(Method):
    """GGIG Table 2's edge-detector reference: Sobel gradient magnitude of the grey image."""
    name = "edge"
    summary = "Sobel edge magnitude of the grey image (a reference map, not an attribution)"
    defaults = {}

    def attribute(self, adapter, images, targets, progress=False, seed=None):
        from scipy import ndimage

        grey = np.asarray(images, np.float64).mean(-1)
        edges = np.hypot(ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=2))
        return edges[..., None].astype(np.float32)


class RandomMap(Method):
    """GGIG Table 2's random reference: uniform noise, fixed per image (independent of batching)."""
    name = "random"
    summary = "a uniform random map per image (a reference map, not an attribution)"
    defaults = {}

    def attribute(self, adapter, images, targets, progress=False, seed=None):
        return np.stack([np.random.default_rng(common.stable_seed(seed or 0, img)).random(img.shape[:2])
                         for img in np.asarray(images)])[..., None].astype(np.float32)


def main(argv=None):
    p = common.parser(__doc__.splitlines()[0], ["inception_v3", "resnet101v2"], "runs/ggig_table",
                      steps_help="IG steps and GGIG steps, its interpolation points (GGIG's paper preset: 51)")
    p.add_argument("--ascent-steps", type=int, default=100, help="GGIG gradient-ascent steps per point")
    args = p.parse_args(argv)
    common.announce(args)
    ggig_steps = min(args.steps, 51)
    ggig = "ggig_paper" if (ggig_steps, args.ascent_steps) == (51, 100) else \
        f"ggig_paper:ascent_steps={args.ascent_steps},steps={ggig_steps}"
    methods = ["gradient", common.with_steps("ig", args.steps), ggig, EdgeDetector(), RandomMap()]
    metric = common.metric_specs(args, ["sic_aic_ggig"])["sic_aic_ggig"]
    with common.data_context(args):
        source = common.load_source(args)
        run, rows = common.run(args, source, methods, [metric], args.out, correct_only=False,
                               aggregation=AGGREGATION)
    from tfxattr.evaluation import method_label
    from tfxattr.evaluation.report import fmt, markdown_table

    labels = [method_label(m) for m in methods]
    cells = {(r.model, r.method, r.score): r.aggregate for r in rows if r.metric == metric}
    models = list(dict.fromkeys(r.model for r in rows))
    header = ["Method"] + [f"{m} {s.upper()}" for m in models for s in ("sic", "aic")]
    body = [[COLUMNS[label.partition(":")[0]]] + [fmt(cells.get((m, label, s), float("nan")))
                                                   for m in models for s in ("sic", "aic")] for label in labels]
    common.write_tables(args, args.out, "ggig_table.md", "GGIG Table 2 (reproduction): SIC and AIC",
                        [("Summary of SIC and AIC evaluation", markdown_table(header, body))],
                        notes=f"Data `{source.name}`; GGIG = {ggig}; IG steps {args.steps}; full report: {run.report}")


if __name__ == "__main__":
    raise SystemExit(common.main_guard(main))
