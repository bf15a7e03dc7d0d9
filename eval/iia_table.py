"""Reproduce IIA (Barkan et al., ICCV 2023) Table 1: explanation tests on ImageNet, CNN models.

Methods, in the paper's column order: Grad-CAM, Grad-CAM++, LIFT-CAM, Ablation-CAM, IG, GuidedIG, BlurIG,
FullGrad, Layer-CAM, X-Grad-CAM, IIA2, IIA3, each at its authors' recommended configuration (the CAMs at
the last block). Models: the paper's
ResNet101 (v1) and ConvNeXt-B are not among the Keras applications tfxattr builds; the defaults are
ResNet101V2 and DenseNet201 (the paper's DN). Both settings: maps explain the ground-truth class
("Target") or the predicted class ("Predicted"); POS/NEG hits are always checked against the label.

Metrics (all in percent as in the paper; lower is better for POS, DEL, ADP):

* POS / NEG: blacken 10%..90% of the pixels, most / least relevant first, top-1 accuracy AUC (Chefer et al.);
* INS / DEL: RISE (Petsiuk et al.) as IIA cites it: 224 steps of 1/224 of the pixels each; insertion over
  a Gaussian-blurred image (sigma 5, RISE's kernel; not truncated at 11x11 here), deletion to black
  (RISE sets pixels to 0 in normalised space, i.e. the mean colour: a documented difference);
* ADP / PIC (Grad-CAM++), SIC / AIC (PAIR's notebook settings; IIA cites Kapishnikov et al.).

    python eval/iia_table.py --manual-dir ~/imagenet --limit 1000
    python eval/iia_table.py --models demo --data shapes:20 --steps 16
"""
from __future__ import annotations

import os

import common

METHODS = ("gradcam", "gradcam++", "liftcam", "ablationcam", "ig", "guided_ig", "blur_ig", "fullgrad", "layercam",
           "xgradcam", "iia2", "iia3")
COLUMNS = ("GC", "GC++", "LIFT", "AC", "IG", "GIG", "BIG", "FG", "LC", "XGC", "IIA2", "IIA3")
SETTINGS = {"target": "label", "predicted": "predicted"}
RISE_STEP = 1.0 / 224
METRICS = {
    "pos_neg": {},
    "insertion": {"step": RISE_STEP, "baseline": "blur", "blur_sigma": 5.0},
    "deletion": {"step": RISE_STEP},
    "adp_pic": {},
    "sic_aic_pair": {},
}
# (row name, metric, score, factor to percent)
ROWS = (("NEG", "pos_neg", "neg", 1.0), ("POS", "pos_neg", "pos", 1.0), ("INS", "insertion", "insertion", 100.0),
        ("DEL", "deletion", "deletion", 100.0), ("ADP", "adp_pic", "adp", 1.0), ("PIC", "adp_pic", "pic", 1.0),
        ("SIC", "sic_aic_pair", "sic", 100.0), ("AIC", "sic_aic_pair", "aic", 100.0))
AGGREGATION = {"sic": "median", "aic": "mean"}


def main(argv=None):
    p = common.parser(__doc__.splitlines()[0], ["resnet101v2", "densenet201"], "runs/iia_table", steps=None,
                      steps_help="path steps of IG/GIG/BIG (default: each method's own default)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                   help="explain the ground-truth class (target) and/or the predicted class")
    args = p.parse_args(argv)
    tables(args, METHODS, COLUMNS, "iia_table.md", "IIA Table 1 (reproduction): explanation tests")


def tables(args, method_names, columns, filename, title, note=""):
    """Run every setting of ``args`` for ``method_names`` and write one table per model (``columns``)."""
    common.announce(args)
    metrics = {name: _label(name, opts, args) for name, opts in METRICS.items()}
    methods = [common.with_steps(m, args.steps) for m in method_names]
    rows = []
    with common.data_context(args):
        source = common.load_source(args)
        for setting in args.settings:
            run, summaries = common.run(args, source, methods, list(metrics.values()), os.path.join(args.out, setting),
                                        correct_only=False, targets=SETTINGS[setting], aggregation=AGGREGATION)
            rows += [(setting, r) for r in summaries]
            print(f"{setting}: report {run.report}")
    sections = [(f"{model}", _model_table(rows, model, metrics, methods, args.settings, columns))
                for model in dict.fromkeys(r.model for _, r in rows)]
    reports = ", ".join(os.path.join(args.out, s, "report.md") for s in args.settings)
    common.write_tables(args, args.out, filename, title, sections,
                        notes=f"Data `{source.name}`. Percent; lower is better for POS, DEL and ADP. Reports per "
                              f"setting: {reports}. {note}".strip())


def _label(name, options, args) -> str:
    from tfxattr.evaluation import Spec, parse_spec

    label = common.metric_specs(args, list(METRICS))[name]
    return Spec(name, {**options, **parse_spec(label).options}).label


def _model_table(rows, model, metrics, methods, settings, columns=COLUMNS) -> str:
    from tfxattr.evaluation.report import fmt, markdown_table

    cells = {(s, r.metric, r.score, r.method): r.aggregate for s, r in rows if r.model == model}
    body = []
    for name, metric, score, factor in ROWS:
        for s in settings:
            values = [cells.get((s, metrics[metric], score, m)) for m in methods]
            body.append([name, s.capitalize()] + ["–" if v is None else fmt(factor * v, 2) for v in values])
    return markdown_table(["metric", "setting"] + list(columns), body)


# -- IIA Table 2: ViT models (--vit) ----------------------------------------------------------------------------
# T-Attr last (the paper puts it first): tests/scripts/test_eval_scripts.py checks the header "| GAE | IIA2 | IIA3 |".
VIT_METHODS = ("gae", "iia2_vit", "iia3_vit", "t_attr")
VIT_COLUMNS = ("GAE", "IIA2", "IIA3", "T-Attr")


def vit_main(argv=None):
    """IIA Table 2 (``--vit``): GAE and T-Attr vs IIA2 / IIA3 on ViTs, the metrics and settings of Table 1.

    The paper's ViT-B is keras-hub's ``vit_b16`` (preset ``vit_base_patch16_224_imagenet``; ``--weights none``
    builds it with random weights); its ViT-S has no keras-hub preset. T-Attr is tfxattr's ``t_attr`` (Chefer et
    al. CVPR 2021: LRP through the encoder with the authors' rules, then the rollout of ``[dA * R_A]^+``), at its
    defaults. ``--models demo_vit --data shapes:N`` runs on the shipped demo ViT. ``--steps`` sets IIA's n (the
    paper's 10); T-Attr and GAE take no steps."""
    p = common.parser("IIA Table 2 (reproduction): explanation tests, ViT models", ["vit_b16"], "runs/iia_table_vit",
                      steps=None, steps_help="IIA's interpolation steps per layer (default: 10, the paper's n)")
    p.add_argument("--vit", action="store_true", help="the ViT comparison of Table 2 (this table)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                   help="explain the ground-truth class (target) and/or the predicted class")
    args = p.parse_args(argv)
    tables(args, VIT_METHODS, VIT_COLUMNS, "iia_table_vit.md", "IIA Table 2 (reproduction): explanation tests, ViTs",
           "T-Attr: tfxattr's `t_attr` (Chefer et al. CVPR 2021) at its defaults.")


if __name__ == "__main__":
    import sys

    raise SystemExit(common.main_guard(vit_main if "--vit" in sys.argv[1:] else main))
