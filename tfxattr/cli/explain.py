"""``tfxattr explain``: explain images and write figures — one method: a panel figure per image (image |
heatmap | overlay); several methods: one comparison figure of every method on every image
(:func:`tfxattr.figures.plot`)."""
from __future__ import annotations

import os
import tempfile

from .model_flags import add_model_flags, model_flags

#: the file a comparison figure gets when --out is a directory
COMPARISON_NAME = "comparison.png"


def add_parser(sub, common):
    e = sub.add_parser("explain", help="explain images and write PNG panels (image | heatmap | overlay), or one "
                                       "comparison figure of several methods", parents=[common])
    e.add_argument("images", nargs="*", help="image files (default: the shipped demo image)")
    e.add_argument("--model", default="demo",
                   help="'demo' (shipped model), a Keras application name, a SavedModel dir or a .keras file "
                        "(`tfxattr models` lists the sources)")
    add_model_flags(e)
    e.add_argument("--method", nargs="+", default="ig", metavar="SPEC",
                   help="method spec(s) as in `tfxattr eval`: a name (see `tfxattr methods`) with options, "
                        "e.g. ig:steps=20 or ig+idgi:steps=64,baseline=blur; several (e.g. ig ig+idgi gradcam) "
                        "write one comparison figure, methods x images")
    e.add_argument("--targets", default=None,
                   help="class index or class name (e.g. 3 or triangle), one for every image, or one per image "
                        "separated by commas (default: top-1 of each image)")
    e.add_argument("--steps", type=int, default=None, help="path steps (methods that take them)")
    e.add_argument("--baseline", default=None, help="black, white, blur or a number (methods that take one)")
    e.add_argument("--smooth", type=int, default=None, metavar="SAMPLES",
                   help="SmoothGrad over the method with SAMPLES noisy copies of each image")
    e.add_argument("--seed", type=int, default=None, help="random seed (noise of --smooth, random baselines)")
    e.add_argument("--background", default="white", choices=["white", "black"],
                   help="what transparent pixels of the images are composited over")
    e.add_argument("--out", default="explanation.png",
                   help="output figure, .png or .jpg (one method and several images: _<i> suffixes), or a "
                        f"directory: one <image name>_<method>.png per image inside it ({COMPARISON_NAME} for "
                        "several methods)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    import numpy as np

    from ..demo import demo_image_path
    from ..specs import parse_spec

    given, after = _methods_and_images([args.method] if isinstance(args.method, str) else list(args.method))
    images = [os.fspath(i) for i in args.images + after] or [demo_image_path()]
    specs = [parse_spec(m, "--method") for m in given]
    if len(specs) > 1:
        return _compare(args, images, given, specs)
    spec = specs[0]
    outs = _out_paths(args.out, images, spec.name)
    exp = _explain(args, images, spec.name, _method_options(args, spec, only_taken=False))
    written = exp.save(args.out) if outs is None else [exp.save(out, index=i)[0] for i, out in enumerate(outs)]
    targets = np.atleast_1d(exp.targets)
    for i, (path, img) in enumerate(zip(written, images)):
        print(f"{img}: class {targets[i]} ({exp.label(i)}) -> {path}")
    return 0


def _compare(args, images, given, specs) -> int:
    """Several methods: every method on every image, one comparison figure at --out."""
    import numpy as np

    from ..figures import plot

    twice = sorted({g for g in given if given.count(g) > 1})
    if twice:
        raise ValueError(f"--method lists {twice} more than once")
    out = os.path.join(args.out, COMPARISON_NAME) if os.path.isdir(args.out) else args.out
    _check_figure_path(out)
    option_sets = [_method_options(args, spec, only_taken=True) for spec in specs]
    for flag, key in (("--steps", "steps"), ("--baseline", "baseline")):
        if getattr(args, key) is not None and not any(key in options for options in option_sets):
            raise ValueError(f"{flag}: none of the methods {given} takes {key!r}")
    explanations = [_explain(args, images, spec.name, options) for spec, options in zip(specs, option_sets)]
    names = [os.path.basename(i) for i in images]
    plot(explanations, out, image_names=names, method_names=given)
    targets = np.atleast_1d(explanations[0].targets)
    for i, img in enumerate(images):
        print(f"{img}: class {targets[i]} ({explanations[0].label(i)})")
    print(f"{len(given)} methods x {len(images)} image(s) -> {out}")
    return 0


def _explain(args, images, method, options):
    from ..explain import explain

    return explain(args.model, images, method=method, targets=_targets(args.targets), smooth=args.smooth,
                   seed=args.seed, progress=not args.no_progress, background=args.background, **model_flags(args),
                   **options)


def _method_options(args, spec, only_taken: bool) -> dict:
    """The options of method ``spec`` with --steps and --baseline added; ``only_taken``: only to a method
    whose registered defaults have them (several methods: each takes what it can), else to it regardless
    (one method: the method refuses what it does not take). A flag that disagrees with the spec is refused."""
    from ..methods.base import find_spec

    options = dict(spec.options)
    takes = find_spec(spec.name).defaults if only_taken else None
    for flag, key, value in (("--steps", "steps", args.steps),
                             ("--baseline", "baseline", None if args.baseline is None
                              else _number_or_name(args.baseline))):
        if value is None or (takes is not None and key not in takes):
            continue
        if key in options and options[key] != value:
            raise ValueError(f"{flag} {value!r} disagrees with {key}={options[key]!r} in --method "
                             f"{spec.label!r}; give it once")
        options[key] = value
    return options


def _methods_and_images(words):
    """(method specs, image files) among the words --method took: it takes every word up to the next flag,
    so images written after it (``--method ig cat.jpg``, as when it took one spec) land there too. A word
    that names an existing file and no registered method is such an image."""
    from ..methods.base import find_spec

    def is_image(word):
        if not os.path.isfile(word):
            return False
        try:
            find_spec(word.partition(":")[0])
        except ValueError:
            return True
        return False

    images = [w for w in words if is_image(w)]
    methods = [w for w in words if w not in images]
    if not methods:
        raise ValueError(f"--method: {images} are files, not methods; name a method, e.g. --method ig")
    return methods, images


def _targets(text):
    """--targets: None, an index, a class name, or several of them separated by commas (one per image)."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise ValueError(f"--targets: empty class in {text!r}")
    values = [int(t) if t.lstrip("-").isdigit() else t for t in items]
    return values[0] if len(values) == 1 else values


def _out_paths(out, images, method):
    """--out a directory: one ``<image stem>_<method>.png`` per image inside it (``_<i>`` added where stems
    repeat); --out a file: None (Explanation.save numbers several images), after checking it can be written."""
    if not os.path.isdir(out):
        _check_figure_path(out)
        return None
    _check_out_file(os.path.join(out, "x.png"))
    stems = [os.path.splitext(os.path.basename(i))[0] for i in images]
    paths = [os.path.join(out, f"{stem}{'' if stems.count(stem) == 1 else f'_{i}'}_{method}.png")
             for i, stem in enumerate(stems)]
    clash = sorted({p for p in paths if os.path.abspath(p) in {os.path.abspath(i) for i in images}})
    if clash:
        raise ValueError(f"--out: writing into {out!r} would overwrite the input image(s) {clash}; give a file name")
    return paths


def _check_figure_path(path):
    """A figure can be written at ``path``: a suffix it can be written as, in a writable directory."""
    from ..visualize import figure_format

    figure_format(path, "--out")
    _check_out_file(path)


def _check_out_file(path):
    """The directory of output file ``path`` exists and is writable (checked before anything is computed)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--out: directory {folder!r} does not exist")
    try:  # os.access ignores read-only mounts and root's rights; creating a file does not
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--out: cannot write to {folder!r} ({err.strerror or err})") from None


def _number_or_name(v):
    try:
        return float(v)
    except ValueError:
        return v
