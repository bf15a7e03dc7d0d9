"""Run by test_strategy.py in its own process: logical CPU devices must be set up before TensorFlow
initialises, which the pytest process has long done. Prints one JSON line of measurements."""
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [REPO]  # this checkout's tfxattr, and the tests package (tests.helpers' tiny model)

import numpy as np  # noqa: E402

from tfxattr import evaluation  # noqa: E402

out = {}
with tempfile.TemporaryDirectory() as tmp:
    # first TensorFlow work of the process, as in `tfxattr eval --devices 2`: evaluate sets the devices up
    kw = dict(images_per_batch=3, batch_size=4, progress=False, report=False, log=lambda m: None)
    evaluation.evaluate("shapes:4", ["demo"], ["gradient"], ["insertion"], os.path.join(tmp, "two"), devices=2, **kw)
    evaluation.evaluate("shapes:4", ["demo"], ["gradient"], ["insertion"], os.path.join(tmp, "one"), **kw)
    stores = [{evaluation.result_key(r): r["scores"] for r in evaluation.read_records(os.path.join(tmp, d,
                                                                                                   "results.jsonl"))
               if r["kind"] == "result"} for d in ("one", "two")]
    out["eval_keys_equal"] = stores[0].keys() == stores[1].keys() and len(stores[0]) == 4
    out["eval_scores_equal"] = stores[0] == stores[1]

import tensorflow as tf  # noqa: E402

import tfxattr  # noqa: E402
from tests.helpers import build_tiny_cnn  # noqa: E402
from tfxattr.models import mirrored_strategy  # noqa: E402
from tfxattr.models.devices import run_split  # noqa: E402

strategy = mirrored_strategy(2)
out["replicas"] = strategy.num_replicas_in_sync
out["devices"] = list(strategy.extended.worker_devices)
model = build_tiny_cnn()
# 5 images in chunks of 4: a chunk split 2 + 2 and a 1-row chunk (fewer rows than replicas)
images = np.random.default_rng(0).uniform(0, 255, (5, 16, 16, 3)).astype(np.float32)
for method, options in [("ig+idgi", dict(steps=8)), ("gradcam", dict(layer="conv2")),
                        ("iia", dict(layers=["conv2"], steps=3))]:
    one = tfxattr.explain(model, images, method, batch_size=4, progress=False, **options)
    two = tfxattr.explain(model, images, method, batch_size=4, progress=False, strategy=strategy, **options)
    out[method] = {"max_abs_diff": float(np.max(np.abs(one.attribution - two.attribution))),
                   "max_abs": float(np.max(np.abs(one.attribution))),
                   "targets_equal": bool(np.array_equal(one.targets, two.targets))}
rows_seen = []


def double(x):
    rows_seen.append(int(x.shape[0]))  # at trace time: one call per replica
    return 2.0 * x


x = tf.reshape(tf.range(5 * 3, dtype=tf.float32), (5, 3))
out["split_rows"] = rows_seen
out["split_equal"] = bool(np.array_equal(run_split(strategy, double, x).numpy(), 2.0 * x.numpy()))
try:
    mirrored_strategy(3)
    out["too_late"] = None
except RuntimeError as err:
    out["too_late"] = str(err)
print(json.dumps(out))
