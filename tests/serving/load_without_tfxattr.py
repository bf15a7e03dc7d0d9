"""Run in a fresh process: load an exported SavedModel with TensorFlow only (importing tfxattr is made
impossible first) and write every signature's outputs to an .npz.

    python load_without_tfxattr.py SAVED_MODEL INPUTS.npz OUT.npz
"""
import sys

sys.modules["tfxattr"] = None  # any `import tfxattr` now raises ImportError

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main(saved, inputs, out):
    try:
        import tfxattr  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("tfxattr could be imported")
    data = np.load(inputs)
    loaded = tf.saved_model.load(saved)
    images = tf.constant(data["images"])
    results = {"scores": loaded.signatures["serving_default"](images=images)["scores"].numpy()}
    for name, fn in loaded.signatures.items():
        if not name.startswith("explain_"):
            continue
        for kind in ("explicit", "top1"):
            res = fn(images=images, targets=tf.constant(data[kind]))
            for key, value in res.items():
                results[f"{name}/{kind}/{key}"] = value.numpy()
    np.savez(out, **results)
    imported = sorted(k for k, m in sys.modules.items() if k.split(".")[0] == "tfxattr" and m is not None)
    print("signatures:", sorted(loaded.signatures), "tfxattr modules:", imported)


if __name__ == "__main__":
    main(*sys.argv[1:])
