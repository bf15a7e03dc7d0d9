"""The Beam runner's local worker processes share the machine's cores and leave without TensorFlow's teardown;
other runners' workers, and the process that builds the pipeline, are left as they are."""
import atexit
import os
import pickle
import subprocess
import sys

import pytest

from tfxattr import evaluation as ev
from tfxattr.evaluation import beam
from tfxattr.parallel import available_cores

pytest.importorskip("apache_beam")

CONFIG = ev.EvaluationConfig(weights=None, progress=False, report=False)


def score_shards(local_threads, store):
    return beam.ScoreShards("shapes:2", ["demo"], ["gradient"], {}, CONFIG, str(store), 1, local_threads)


@pytest.mark.parametrize("given, expected", [
    ({}, max(1, available_cores() // 2)),  # the default: the DirectRunner in multi_processing mode
    ({"direct_num_workers": 1}, available_cores()),
    ({"direct_num_workers": 0}, 1),  # Beam's "one worker per core"
    ({"direct_running_mode": "in_memory"}, None),  # runs in this process
    ({"direct_running_mode": "multi_threading"}, None),
    ({"runner": "DataflowRunner"}, None),  # workers on their own machines
    ({"runner": "FlinkRunner"}, None),
])
def test_local_workers_share_the_cores_other_runners_are_left_alone(given, expected):
    assert beam.local_worker_threads(beam.pipeline_options(2, given)) == expected


def run_worker(tmp_path, script):
    """Run ``script`` in a fresh Python (as a worker process is) after ``fn.setup()``, ``fn`` a ScoreShards
    pickled here (for one TensorFlow thread per local worker); an exit hook registered before the setup says
    whether Python's own teardown ran. Returns the finished process."""
    with open(tmp_path / "fn.pkl", "wb") as f:
        pickle.dump(score_shards(1, tmp_path), f)
    code = (f"import atexit, pickle\nfn = pickle.load(open({str(tmp_path / 'fn.pkl')!r}, 'rb'))\n"
            "atexit.register(print, 'teardown')\nfn.setup()\n" + script)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)


def test_a_local_worker_runs_tensorflow_on_its_share_and_exits_at_once(tmp_path):
    done = run_worker(tmp_path, "import tensorflow as tf\n"
                                "print(tf.config.threading.get_intra_op_parallelism_threads(),"
                                " tf.config.threading.get_inter_op_parallelism_threads())\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 1\n"  # flushed, and no teardown


def test_a_local_worker_that_fails_exits_with_its_error(tmp_path):
    done = run_worker(tmp_path, "raise RuntimeError('a failed bundle')\n")
    assert done.returncode == 1
    assert "a failed bundle" in done.stderr and done.stdout == "teardown\n"


def test_the_process_that_builds_the_pipeline_is_never_pinned_nor_cut_short(tmp_path, monkeypatch):
    import tensorflow as tf

    registered, register = [], atexit.register
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **k: registered.append(fn) or register(fn, *a, **k))
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    fn = score_shards(1, tmp_path)
    fn.setup()  # in this process: the in-memory DirectRunner's case
    assert tf.config.threading.get_intra_op_parallelism_threads() == threads
    assert beam._exit_at_once not in registered
    assert fn.loaded[0].label == "demo"
