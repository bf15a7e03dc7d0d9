"""Reproduce IDGI (Yang, Wang, Bilgic, CVPR 2023) Tables 1-4.

Paper settings (the defaults): the eleven Keras ImageNet applications, ImageNet validation images each
model classifies correctly, methods gradient, IG, GuidedIG and BlurIG with and without IDGI at 200 steps
(black baseline for IG/GIG, saliency's default paths), and

* Table 1: insertion (5% steps from a black image): probability and probability ratio, mean over images;
* Table 2: SIC / AIC, PIL blur radius 20 base, 25 thresholds, 100 bins, information = WebP size;
* Table 3: the same with MS-SSIM as the information level;
* Table 4: weakly supervised localization (best-threshold F1, ROC-AUC, MAE) — only for data with object
  masks (tfds imagenet2012 has none; the demo's shapes data and .npz / folder data with masks do).

SIC is aggregated with the median and AIC with the mean (IDGI Sec. 4.4, as XRAI): the metrics' own default,
so no override is passed. Tables 2-3 use the paper's binned estimator (``sic_aic_idgi*`` presets: the images'
points pooled in 100 bins of information level), when the store holds the points; the report says
"of bins" next to such numbers.

    python eval/idgi_tables.py --manual-dir ~/imagenet --limit 1000        # the paper, on 1000 val images
    python eval/idgi_tables.py --models demo --data shapes:40 --steps 32   # the demo model, generated data
"""
from __future__ import annotations

import common

METHODS = ("ig", "ig+idgi", "guided_ig", "guided_ig+idgi", "blur_ig", "blur_ig+idgi", "gradient")
COLUMNS = ("IG", "+IDGI", "GIG", "+IDGI", "BlurIG", "+IDGI", "Gradient")
AGGREGATION = None  # each score's own: SIC median, AIC mean (tfxattr.metrics.PIC_AGGREGATION)
TABLES = (
    ("Table 1. Insertion score", (("insertion", "insertion", "probability ↑"),
                                  ("insertion", "insertion_ratio", "probability ratio ↑"))),
    ("Table 2. SIC and AIC, information level = compressed size (WebP)",
     (("sic_aic_idgi", "aic", "AUC AIC ↑"), ("sic_aic_idgi", "sic", "AUC SIC ↑"))),
    ("Table 3. SIC and AIC, information level = MS-SSIM",
     (("sic_aic_idgi_msssim", "aic", "AUC AIC ↑"), ("sic_aic_idgi_msssim", "sic", "AUC SIC ↑"))),
    ("Table 4. Weakly supervised localization", (("localization", "f1", "F1 ↑"),
                                                  ("localization", "roc_auc", "ROC-AUC ↑"),
                                                  ("localization", "mae", "MAE ↓"))),
)


def main(argv=None):
    import keras_apps

    p = common.parser(__doc__.splitlines()[0], keras_apps.NAMES, "runs/idgi_tables")
    p.add_argument("--all-images", action="store_true", help="keep misclassified images too (the paper does not)")
    args = p.parse_args(argv)
    common.announce(args)
    with common.data_context(args):
        source = common.load_source(args)
        names = ["insertion", "sic_aic_idgi", "sic_aic_idgi_msssim"]
        if source.has_masks:
            names.append("localization")
        else:
            print(f"note: {source.name} has no object masks: Table 4 (localization) is left out")
        metrics = common.metric_specs(args, names)
        methods = [common.with_steps(m, args.steps) for m in METHODS]
        correct_only = common.keep_correct_only(args, not args.all_images)
        run, rows = common.run(args, source, methods, list(metrics.values()), args.out,
                               correct_only=correct_only, aggregation=AGGREGATION)
    from tfxattr.evaluation.report import pivot_table

    sections = []
    for title, scores in TABLES:
        for metric, score, name in scores:
            if metric in metrics:
                sections.append((f"{title}: {name}",
                                 pivot_table(rows, metrics[metric], score, methods, column_names=COLUMNS)))
    common.write_tables(args, args.out, "idgi_tables.md", "IDGI Tables 1-4 (reproduction)", sections,
                        notes=f"Data `{source.name}`, {args.steps} steps, "
                              f"{'correctly classified images only' if correct_only else 'all images'}; "
                              f"full report: {run.report}")


if __name__ == "__main__":
    raise SystemExit(common.main_guard(main))
