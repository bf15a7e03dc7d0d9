"""Issue 14: our Score-CAM, Layer-CAM, Occlusion and RISE beside tf-keras-vis and Xplique on the demo model.

The peers need a scratch environment (Xplique 2.0.2 pins TensorFlow <= 2.20; it runs on 2.21 installed
without its dependencies)::

    python -m venv --system-site-packages /tmp/peers-venv
    /tmp/peers-venv/bin/pip install --no-deps tf-keras-vis xplique tensorflow-probability tf-keras
    /tmp/peers-venv/bin/pip install deprecated opencv-python-headless scikit-learn dm-tree
    PYTHONPATH=. /tmp/peers-venv/bin/python bench/compare_peers_baselines.py      # writes the peers section
                                                                                  # of bench/results_baselines.md

Agreement per method: Pearson correlation of the maps (per image, then the mean and the minimum) and the
maximum absolute difference relative to the largest value of the peer's maps. Where a peer computes
something else than its paper (see the notes it prints), we compare with the peer's rule *and* with the
paper's rule, and follow the paper.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxattr  # noqa: E402
from tfxattr.demo import load_demo_model, make_demo_data  # noqa: E402
from tfxattr.methods.cam import cam_map  # noqa: E402
from tfxattr.methods.layercam import LayerCAM  # noqa: E402
from tfxattr.methods.scorecam import ScoreCAM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAYER = "last_conv"  # the demo model's last block (8 x 8 x 96)
BEGIN, END = "<!-- peers: begin -->", "<!-- peers: end -->"


def agreement(ours, theirs) -> dict:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    ours, theirs = ours.reshape(len(ours), -1), theirs.reshape(len(theirs), -1)
    corr = [np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else np.nan for a, b in zip(ours, theirs)]
    return {"corr_mean": float(np.nanmean(corr)), "corr_min": float(np.nanmin(corr)),
            "max_abs_diff_rel": float(np.abs(ours - theirs).max() / np.abs(theirs).max())}


def layer_maps(method, model, images, targets, weights_fn):
    """Our CAM at the layer's resolution (before the resize): ReLU(sum_k w_k A_k) (N, h, w)."""
    chain = method.chain(tfxattr.as_model(model))
    a = chain.stage(0, tf.constant(images))
    return cam_map(a, weights_fn(chain, a), a.shape[1:3]).numpy()[..., 0]


def compare(n_images, rise_samples):
    from tf_keras_vis.layercam import Layercam
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.scores import CategoricalScore
    from xplique.attributions import Occlusion, Rise

    model = load_demo_model()
    data = make_demo_data(n_images, seed=11)
    x, t = data["images"].astype(np.float32), data["labels"].astype(np.int32)
    onehot = tf.one_hot(t, model.output_shape[-1]).numpy()
    rows = []

    # Layer-CAM: the same rule (ReLU(sum_k ReLU(g) A_k)); tf-keras-vis upsamples with scipy.ndimage.zoom
    peer = Layercam(model)(CategoricalScore(list(t)), x, penultimate_layer=LAYER, expand_cam=False,
                           normalize_cam=False)
    ours = layer_maps(LayerCAM(layer=LAYER), model, x, t, lambda chain, a: _layercam_weights(chain, a, t))
    rows.append(("layercam", "tf-keras-vis Layercam", "layer resolution (8 x 8)", agreement(ours, peer)))
    peer_up = Layercam(model)(CategoricalScore(list(t)), x, penultimate_layer=LAYER, normalize_cam=False)
    ours_up = tfxattr.explain(model, x, "layercam", targets=t, layer=LAYER).map
    rows.append(("layercam", "tf-keras-vis Layercam", "input resolution (zoom vs tf.image.resize)",
                 agreement(ours_up, peer_up)))

    # Score-CAM: tf-keras-vis weights each channel by the softmax *class* probability of the masked input
    # (the authors' PyTorch code does the same); the paper normalises the channel scores with a softmax
    # over the channels. Same masks (bilinear upsampling, min-max) up to the upsampling grid.
    peer = Scorecam(model)(CategoricalScore(list(t)), x, penultimate_layer=LAYER, expand_cam=False,
                           normalize_cam=False)
    method = ScoreCAM(layer=LAYER)
    prob = tfxattr.as_model(model, output="probability")
    ours_peer_rule = layer_maps(method, model, x, t, lambda chain, a: method.masked_scores(
        prob, a, x, t, method.selected(a))[:, None, None, :])
    rows.append(("scorecam", "tf-keras-vis Scorecam", "the peer's rule (class probability as weight)",
                 agreement(ours_peer_rule, peer)))
    ours_paper = layer_maps(method, model, x, t, lambda chain, a: method.channel_weights(
        tfxattr.as_model(model), chain, a, x, t)[:, None, None, :])
    rows.append(("scorecam", "tf-keras-vis Scorecam", "ours: the paper's rule (softmax over channels)",
                 agreement(ours_paper, peer)))

    # Occlusion: the same patches and sensitivities; Xplique sums overlapping patches, we average them
    for patch, stride in ((8, 8), (8, 4)):
        peer = Occlusion(model, patch_size=patch, patch_stride=stride, occlusion_value=0.0).explain(x, onehot)
        ours = tfxattr.explain(model, x, "occlusion", targets=t, patch=patch, stride=stride).attribution
        cover = _coverage(x.shape[1], patch, stride)
        label = f"patch {patch}, stride {stride}" + (" (ours x patches per pixel)" if stride < patch else "")
        rows.append(("occlusion", "Xplique Occlusion", label,
                     agreement(ours[..., 0] * cover, np.asarray(peer)[..., 0])))

    # RISE: different random masks (Xplique's TF RNG is not seeded per call), so only the expectations agree;
    # Xplique divides by the per-pixel sum of the masks, the paper (and we) by N p
    tf.random.set_seed(0)
    peer = Rise(model, nb_samples=rise_samples, grid_size=7, preservation_probability=0.5).explain(x, onehot)
    ours = tfxattr.explain(model, x, "rise", targets=t, samples=rise_samples, seed=0).attribution
    rows.append(("rise", "Xplique Rise", f"{rise_samples} masks each, independent draws",
                 agreement(ours[..., 0], np.asarray(peer)[..., 0])))
    ours2 = tfxattr.explain(model, x, "rise", targets=t, samples=rise_samples, seed=1).attribution
    rows.append(("rise", "ours, another seed", "Monte-Carlo noise floor", agreement(ours[..., 0], ours2[..., 0])))
    return rows


def _layercam_weights(chain, a, t):
    with tf.GradientTape() as tape:
        tape.watch(a)
        f = chain.explained(a, tf.constant(t))
    return LayerCAM.weights(a, tape.gradient(f, a), f, None)


def _coverage(size, patch, stride):
    starts = list(range(0, size - patch + 1, stride))
    cover = np.zeros(size)
    for s in starts:
        cover[s:s + patch] += 1
    return np.outer(cover, cover)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--rise-samples", type=int, default=4000)
    p.add_argument("--out", default=os.path.join(HERE, "results_baselines.md"))
    args = p.parse_args(argv)
    import tf_keras_vis
    import xplique

    rows = compare(args.images, args.rise_samples)
    lines = [BEGIN, "## Agreement with peer implementations", "",
             f"`PYTHONPATH=. /tmp/peers-venv/bin/python bench/compare_peers_baselines.py --images {args.images} "
             f"--rise-samples {args.rise_samples}`: demo model, {args.images} generated images, their labels as "
             f"targets, layer `{LAYER}`; tf-keras-vis {tf_keras_vis.__version__}, Xplique {xplique.__version__} "
             "(installed without dependencies next to TF 2.21).", "",
             "| method | peer | compared | correlation (mean / min) | max abs diff / peer max |",
             "|---|---|---|---|---|"]
    for name, peer, what, a in rows:
        lines.append(f"| {name} | {peer} | {what} | {a['corr_mean']:.4f} / {a['corr_min']:.4f} | "
                     f"{a['max_abs_diff_rel']:.2e} |")
    lines += ["", END]
    section = "\n".join(lines)
    print(section)
    old = open(args.out).read() if os.path.exists(args.out) else ""
    if BEGIN in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    else:
        new = old + ("\n" if old else "") + section + "\n"
    with open(args.out, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
