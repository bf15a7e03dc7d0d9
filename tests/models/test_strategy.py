"""tf.distribute: a MirroredStrategy over 2 logical CPU devices gives the single-device results."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tfxattr
from tfxattr.evaluation import EvaluationConfig

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def mirrored():
    """The measurements of mirrored_run.py, in a process of its own: the CPU can be split into logical
    devices only before TensorFlow initialises them, which this process has done long ago."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, os.path.join(HERE, "mirrored_run.py")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["ig+idgi", "gradcam", "iia"])
def test_two_logical_cpus_equal_one_device(mirrored, method):
    assert mirrored["replicas"] == 2 and [d[-5:] for d in mirrored["devices"]] == ["CPU:0", "CPU:1"]
    result = mirrored[method]
    assert result["max_abs"] > 0 and result["targets_equal"]
    assert result["max_abs_diff"] <= 1e-6 * result["max_abs"]


def test_chunks_are_split_in_order_across_replicas(mirrored):
    assert mirrored["split_rows"] == [3, 2] and mirrored["split_equal"]


def test_eval_with_two_devices_stores_the_single_device_scores(mirrored):
    assert mirrored["eval_keys_equal"] and mirrored["eval_scores_equal"]


def test_too_late_for_logical_devices_says_so(mirrored):
    assert "already initialised" in mirrored["too_late"] and "start of the program" in mirrored["too_late"]


def test_bad_strategy_and_devices_are_named(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="strategy must be a tf.distribute.Strategy"):
        tfxattr.explain(tiny_model, tiny_images, "gradient", strategy="mirrored")
    with pytest.raises(ValueError, match="strategy"):
        tfxattr.as_model(tiny_model, strategy=2)
    with pytest.raises(ValueError, match="devices"):
        EvaluationConfig(devices=0)


def test_one_device_strategy_gives_the_same_maps(tiny_model, tiny_images):
    import tensorflow as tf

    plain = tfxattr.explain(tiny_model, tiny_images, "ig+idgi", steps=4, progress=False).attribution
    one = tfxattr.explain(tiny_model, tiny_images, "ig+idgi", steps=4, progress=False,
                          strategy=tf.distribute.OneDeviceStrategy("/cpu:0")).attribution
    np.testing.assert_array_equal(plain, one)
    adapter = tfxattr.as_model(tiny_model)
    assert adapter.strategy is None and adapter.with_strategy(None) is adapter
