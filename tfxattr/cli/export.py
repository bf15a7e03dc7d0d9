"""``tfxattr export``: a SavedModel serving scores and explanations."""
from __future__ import annotations

from .model_flags import add_model_flags, model_flags


def add_parser(sub, common):
    x = sub.add_parser("export", help="write a SavedModel serving scores and explanations (runs without tfxattr)",
                       parents=[common],
                       description="Write a SavedModel with serving_default (scores) and one explain_<method> "
                                   "signature per method ('+' written '_', '++' written '_plus_plus'); loading it "
                                   "needs TensorFlow only (TF Serving, saved_model_cli, tf.saved_model.load).")
    x.add_argument("model", help="'demo', a Keras application name, a SavedModel dir or a .keras file")
    x.add_argument("path", help="output directory of the SavedModel (e.g. explainer/1 for TF Serving)")
    x.add_argument("--methods", nargs="+", default=["ig+idgi"],
                   help="method specs, e.g. ig+idgi gradcam smooth:inner=ig,samples=10")
    x.add_argument("--steps", type=int, default=None, help="path steps of every method that takes them")
    x.add_argument("--seed", type=int, default=0, help="seed of SmoothGrad's noise (fixed in the graph)")
    add_model_flags(x)


def run(args) -> int:
    from ..serving import export, signature_name
    from ..serving.export import resolve_methods

    names = resolve_methods(args.methods, args.steps)  # bad specs fail before the model is loaded
    path = export(args.model, args.path, methods=args.methods, steps=args.steps, seed=args.seed, **model_flags(args))
    print(f"{path}: serving_default, {', '.join(signature_name(k) for k in names)}")
    return 0
