"""Regenerate every figure of the README and the docs site (docs/figures/) from the shipped demo models.

    python scripts/make_figures.py                 # every figure
    python scripts/make_figures.py --only path cams

Nothing is downloaded: the demo CNN and the demo ViT (``tfxattr.demo``), the shipped demo image and generated
shapes images (``tfxattr.demo.make_demo_data``) with a fixed seed. Every method that draws random numbers gets
:data:`SEED`, so a rerun writes the same pictures (up to the PNG encoder). Each figure is a grid: one row per
image, the image first, then one map per method, each scaled to its own 99th percentile
(:func:`tfxattr.visualize.normalize`, the colours of ``tfxattr explain``'s figures).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the checkout's tfxattr, whatever is installed

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: where the figures go (the README links them from there too)
OUT_DIR = os.path.join(ROOT, "docs", "figures")
#: the seed of every random method (SmoothGrad's noise, RISE's masks) and of the generated images
SEED = 0
#: generated images to pick the second example from (the first that both demo models classify correctly,
#: of another class than the demo image's): a handful is enough, the demo models are 99% / 77% accurate
CANDIDATES = 16
#: data seed of the candidates: unseen by the demo models (trained on 12345 / 54321, see tfxattr.demo)
DATA_SEED = 7
#: inches per panel: the 64x64 demo images show at about 2x their size at DPI
PANEL_INCHES = 1.35
#: resolution of the written PNGs (small files: every figure stays well under 200 KB)
DPI = 100
#: colours of the stored PNGs' palette (the figures use one colour map plus the images' few colours)
PALETTE_COLORS = 256
#: the colour scale stated under every figure
SCALE_NOTE = "each map on its own scale: black = min(0, the map's minimum), white = its 99th percentile and above"

#: figure name -> (model, method specs as `tfxattr explain --method` takes them, title). Options are only
#: those that are the same before and after the glossary renames (steps, composite, explainer, times_input).
FIGURES = {
    "path": ("demo", ["gradient", "ig:steps=200", "guided_ig:steps=200", "blur_ig:steps=200", "smooth", "xrai",
                      "ig+idgi:steps=200", "guided_ig+idgi:steps=200", "blur_ig+idgi:steps=200"],
             "Path methods (top), the same paths with IDGI (bottom, below each) (demo CNN)"),
    "ggig": ("demo", ["gradient", "ig:steps=200", "ggig", "ggig_paper"],
             "GGIG: gradient ascent from the points of the line (demo CNN)"),
    "iia": ("demo", ["gradcam", "ig:steps=200", "iia2", "iia3"],
            "IIA: iterated integrals over the input and the last blocks (demo CNN)"),
    "cams": ("demo", ["gradcam", "gradcam++", "layercam", "xgradcam", "liftcam", "ablationcam", "scorecam",
                      "fullgrad", "occlusion", "rise"],
             "CAMs and perturbation methods (demo CNN)"),
    "vit": ("demo_vit", ["attention_rollout", "gradient_rollout", "gae", "t_attr", "iia_vit", "iia2_vit",
                         "ig+idgi:steps=200"],
            "Vision Transformer methods (demo ViT)"),
    "lrp": ("demo", ["gradient:times_input=True", "lrp", "lrp:composite=epsilon_plus",
                     "lrp:composite=epsilon_plus_flat", "lrp:composite=epsilon_alpha2_beta1"],
            "LRP composites (demo CNN)"),
    "learned": ("demo", ["learned:explainer=demo", "ig:steps=200", "ig+idgi:steps=200", "scorecam"],
                "The learned explainer: one forward pass (demo CNN)"),
}
#: the README's picture: several methods on the demo image alone, heatmaps over overlays
README_METHODS = ["ig:steps=200", "ig+idgi:steps=200", "guided_ig+idgi:steps=200", "gradcam", "iia2", "scorecam",
                  "lrp:composite=epsilon_plus", "learned:explainer=demo"]
#: methods per band of rows in a family's figure (more wrap into another band)
PER_BAND = 5
#: methods per band of the README's picture (a heatmap row over an overlay row)
README_PER_ROW = 4
#: the metrics page's picture: mean insertion and deletion curves of a few methods over generated images
CURVE_METHODS = ["gradient", "ig:steps=200", "ig+idgi:steps=200", "gradcam", "scorecam"]
#: images whose curves are averaged (enough for smooth means, few enough to take seconds)
CURVE_IMAGES = 24


def load(model_name):
    from tfxattr import demo

    return demo.load_demo_vit() if model_name == "demo_vit" else demo.load_demo_model()


def predicted(model, images) -> np.ndarray:
    return np.asarray(model(np.asarray(images, np.float32), training=False)).argmax(-1)


def example_images():
    """The demo image and the first generated image of another class that both demo models classify correctly,
    as (2, 64, 64, 3) float32 pixels in 0..255."""
    from PIL import Image

    from tfxattr import demo

    first = np.asarray(Image.open(demo.demo_image_path()).convert("RGB"), np.float32)
    data = demo.make_demo_data(CANDIDATES, seed=DATA_SEED)
    images, labels = np.asarray(data["images"], np.float32), data["labels"]
    cnn, vit = demo.load_demo_model(), demo.load_demo_vit()
    first_class = int(predicted(cnn, first[None])[0])
    ok = (predicted(cnn, images) == labels) & (predicted(vit, images) == labels) & (labels != first_class)
    if not ok.any():
        raise RuntimeError(f"no generated image of seed {DATA_SEED} is classified correctly by both demo models; "
                           "raise CANDIDATES")
    return np.stack([first, images[int(np.argmax(ok))]])


def explain_all(model, images, specs):
    """spec -> Explanation of every image (each image's top-1 class)."""
    import tfxattr
    from tfxattr.specs import parse_spec

    out = {}
    for text in specs:
        spec = parse_spec(text, "method")
        started = time.perf_counter()
        out[text] = tfxattr.explain(model, images, spec.name, seed=SEED, progress=False, **spec.options)
        print(f"  {text}: {time.perf_counter() - started:.1f} s", flush=True)
    return out


def panel_label(spec: str) -> str:
    """A spec shortened for a narrow panel title: options after the name on a second line."""
    name, _, options = spec.partition(":")
    return name if not options else f"{name}\n{options.replace('composite=', '')}"


def class_line(exp, index) -> str:
    probability = "" if exp.probabilities is None else f" (p={float(np.atleast_1d(exp.probabilities)[index]):.2f})"
    return f"{exp.label(index)}{probability}"


def new_figure(columns, rows, title):
    from tfxattr.visualize import new_figure as figure

    fig = figure(PANEL_INCHES * columns, PANEL_INCHES * rows + 0.75, DPI)
    fig.suptitle(title, fontsize=11)
    fig.supxlabel(SCALE_NOTE, fontsize=8)
    return fig, fig.subplots(rows, columns, squeeze=False)


def show(ax, picture, title, **kwargs):
    ax.imshow(picture, interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def method_grid(name, images, explanations, title):
    """Rows: images; columns: the image (with its class) and each method's map. More than :data:`PER_BAND`
    methods wrap into bands of rows (one row per image in each band), so a page shows the maps large enough."""
    from tfxattr.visualize import CMAP, normalize, to_uint8_image

    specs = list(explanations)
    bands = -(-len(specs) // PER_BAND)
    columns = min(len(specs), PER_BAND)
    fig, axes = new_figure(columns + 1, len(images) * bands, title)
    first = explanations[specs[0]]
    for band in range(bands):
        for row, image in enumerate(images):
            r = band * len(images) + row
            if band == 0:
                show(axes[r, 0], to_uint8_image(image), class_line(first, row))
            else:
                axes[r, 0].axis("off")
            for col in range(columns):
                i = band * PER_BAND + col
                if i >= len(specs):
                    axes[r, col + 1].axis("off")
                    continue
                heat = normalize(np.asarray(explanations[specs[i]].map)[row])
                show(axes[r, col + 1], heat, panel_label(specs[i]) if row == 0 else "", cmap=CMAP, vmin=0, vmax=1)
    return save(fig, name)


def readme_figure(image, explanations):
    """One image, each method as a heatmap over its overlay; :data:`README_PER_ROW` methods per band of two rows,
    so the figure stays readable at a README's width."""
    from tfxattr.visualize import CMAP, normalize, overlay, to_uint8_image

    specs = list(explanations)
    bands = -(-len(specs) // README_PER_ROW)
    fig, axes = new_figure(README_PER_ROW + 1, 2 * bands, "Several methods, one call each, on the demo image")
    for ax in axes[:, 0]:
        ax.axis("off")
    show(axes[0, 0], to_uint8_image(image), class_line(explanations[specs[0]], 0))
    for i, spec in enumerate(specs):
        row, col = 2 * (i // README_PER_ROW), 1 + i % README_PER_ROW
        heat = np.asarray(explanations[spec].map)[0]
        show(axes[row, col], normalize(heat), panel_label(spec), cmap=CMAP, vmin=0, vmax=1)
        show(axes[row + 1, col], overlay(image, heat), "")
    return save(fig, "readme_methods")


def curves_figure(model):
    """Mean insertion and deletion curves over generated images the demo CNN classifies correctly."""
    from tfxattr import demo
    from tfxattr.metrics import compute

    data = demo.make_demo_data(CURVE_IMAGES, seed=DATA_SEED)
    images, labels = np.asarray(data["images"], np.float32), data["labels"]
    keep = predicted(model, images) == labels
    images, labels = images[keep], labels[keep]
    explanations = explain_all(model, images, CURVE_METHODS)
    fig, axes = new_figure(2, 1, f"Insertion and deletion on {len(images)} generated images (demo CNN)")
    fig.set_size_inches(8.0, 3.6)
    fig.supxlabel("")
    for ax, metric in zip(axes[0], ("insertion", "deletion")):
        for spec, exp in explanations.items():
            result = compute(metric, model, images, exp.map, targets=labels, progress=False)
            x, y = result.aggregate_curves()[metric]
            score = result.aggregate()[metric]
            ax.plot(x, y, label=f"{spec} ({score:.3f})")
        better = "higher" if metric == "insertion" else "lower"
        ax.set_title(f"{metric} (area: {better} is better)", fontsize=10)
        ax.set_xlabel("fraction of pixels " + ("revealed" if metric == "insertion" else "removed"), fontsize=9)
        ax.set_ylabel("probability of the class (mean)", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return save(fig, "metrics_curves")


def save(fig, name) -> str:
    """Render ``fig`` as an RGB PNG (tfxattr's own writer), then store it with a palette of
    :data:`PALETTE_COLORS` colours: a third of the bytes, no visible change on these colour maps."""
    from PIL import Image

    from tfxattr.visualize import save_png

    path = save_png(fig, os.path.join(OUT_DIR, f"{name}.png"))
    with Image.open(path) as rgb:
        small = rgb.convert("RGB").quantize(PALETTE_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
    print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path) // 1024} KiB", flush=True)
    return path


def main(argv=None) -> int:
    names = [*FIGURES, "readme", "curves"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=names, default=names, help="figures to draw")
    args = parser.parse_args(argv)
    images = example_images()
    models = {}
    for name in args.only:
        print(f"{name}:", flush=True)
        if name == "readme":
            model = models.setdefault("demo", load("demo"))
            readme_figure(images[0], explain_all(model, images[:1], README_METHODS))
        elif name == "curves":
            curves_figure(models.setdefault("demo", load("demo")))
        else:
            model_name, specs, title = FIGURES[name]
            model = models.setdefault(model_name, load(model_name))
            method_grid(name, images, explain_all(model, images, specs), title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
