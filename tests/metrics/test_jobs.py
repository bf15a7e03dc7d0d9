"""``jobs=``: the per-image CPU work of SIC/AIC and ROAD on several processes gives the same numbers as one,
and a run starts its worker pool once (tfxattr.parallel)."""
import numpy as np
import pytest

from tfxattr.metrics import METRICS, compute
from tfxattr.parallel import WorkerPool, available_cores, resolve_jobs, worker_pool

PARALLEL = sorted(name for name, spec in METRICS.items() if spec.parallel)


def test_the_parallel_metrics_are_declared():
    assert {"sic_aic", "sic_aic_pair", "sic_aic_idgi", "sic_aic_idgi_msssim", "sic_aic_ggig", "road"} <= set(PARALLEL)


@pytest.fixture(scope="module")
def scored(demo_model, demo_data):
    x = demo_data["images"][:5].astype(np.float32)
    rng = np.random.default_rng(3)
    maps = (rng.random(x.shape[:3]) + 2.0 * demo_data["masks"][:5]).astype(np.float32)
    maps[2] = 0.0  # a constant map: skipped the same way
    return x, maps, demo_data["labels"][:5]


def _same(a, b):
    assert a.scores.keys() == b.scores.keys()
    for k in a.scores:
        np.testing.assert_array_equal(a.scores[k], b.scores[k])
        assert a.skipped[k] == b.skipped[k]
    for k, c in a.curves.items():
        np.testing.assert_array_equal(c.y, b.curves[k].y)
        if c.points is not None:
            np.testing.assert_array_equal(c.points, b.curves[k].points)


@pytest.mark.parametrize("name", PARALLEL)
def test_jobs_2_gives_the_numbers_of_jobs_1(name, demo_model, scored):
    x, maps, labels = scored
    opts = {"min_pred_value": 0.0} if name.startswith("sic_aic") else {"fractions": (0.2, 0.6)}
    if name.startswith("sic_aic"):
        opts["thresholds"] = (0.05, 0.3, 1.0)
    one = compute(name, demo_model, x, maps, targets=labels, batch_size=8, jobs=1, **opts)
    before = WorkerPool.started
    two = compute(name, demo_model, x, maps, targets=labels, batch_size=8, jobs=2, **opts)
    assert WorkerPool.started == before + 1  # one pool for the call, not one per image or group
    _same(one, two)
    if name.startswith("sic_aic") and "msssim" not in name:
        np.testing.assert_array_equal(one.extras["information"], two.extras["information"])


def test_one_pool_serves_several_calls(demo_model, scored):
    x, maps, labels = scored
    before = WorkerPool.started
    with WorkerPool(2) as pool:
        a = compute("sic_aic", demo_model, x, maps, targets=labels, jobs=pool, thresholds=(0.1, 1.0), min_pred_value=0)
        b = compute("road", demo_model, x, maps, targets=labels, jobs=pool, fractions=(0.5,))
        compute("insertion", demo_model, x, maps, targets=labels, jobs=pool)  # not parallel: runs here
    assert WorkerPool.started == before + 1
    _same(a, compute("sic_aic", demo_model, x, maps, targets=labels, jobs=1, thresholds=(0.1, 1.0), min_pred_value=0))
    _same(b, compute("road", demo_model, x, maps, targets=labels, jobs=1, fractions=(0.5,)))


def test_pool_sizes_and_defaults():
    assert resolve_jobs(None) == available_cores() >= 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="jobs"):
            resolve_jobs(bad)
    before = WorkerPool.started
    with worker_pool(4, tasks=1) as pool:  # one image: nothing to share out
        assert not pool.parallel and list(pool.ordered(divmod, [(7, 2)])) == [(3, 1)]
    assert WorkerPool.started == before
    with WorkerPool(2) as pool:
        assert list(pool.ordered(divmod, [(i, 3) for i in range(9)], ahead=2)) == [divmod(i, 3) for i in range(9)]
        with worker_pool(pool) as same:  # a run's pool is borrowed, not closed
            assert same is pool
        assert pool.parallel


def test_a_bad_jobs_value_is_refused_by_every_metric(demo_model, scored):
    x, maps, labels = scored
    with pytest.raises(ValueError, match="jobs"):
        compute("insertion", demo_model, x, maps, targets=labels, jobs=0)
    with pytest.raises(ValueError, match="jobs"):
        compute("sic_aic", demo_model, x, maps, targets=labels, jobs=0)


def test_eval_jobs_2_writes_the_records_of_jobs_1_and_starts_one_pool(tmp_path):
    from tfxattr.evaluation import evaluate
    from tfxattr.evaluation.store import load_results

    metrics = ["sic_aic:thresholds=[0.1,0.5,1.0],min_pred_value=0.0", "road:fractions=[0.3]", "insertion"]
    quiet = {"progress": False, "report": False, "log": lambda m: None, "images_per_batch": 2, "chunk_size": 4}
    stores = {}
    for jobs in (1, 2):
        before = WorkerPool.started
        evaluate("shapes:4", ["demo"], ["gradient"], metrics, tmp_path / str(jobs), jobs=jobs, **quiet)
        assert WorkerPool.started == before + (jobs > 1)  # once per run: not per model, method, chunk or batch
        stores[jobs] = {(r["method"], r["image"]): (r["scores"], r["curves"], r["skipped"])
                        for r in load_results(tmp_path / str(jobs))}
    assert len(stores[1]) == 4
    np.testing.assert_equal(stores[1], stores[2])


def test_eval_jobs_is_checked():
    from tfxattr.evaluation.config import EvaluationConfig

    assert EvaluationConfig().jobs is None and EvaluationConfig(jobs=3).jobs == 3
    with pytest.raises(ValueError, match="jobs"):
        EvaluationConfig(jobs=0)
