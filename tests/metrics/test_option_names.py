"""Option names (the glossary, ``tfxattr.checks.RENAMED``): every registered metric uses today's names and refuses
a retired one with the name that replaced it, at the one door every call goes through (``MetricSpec``: compute,
``METRICS[name](...)`` and the evaluation runner)."""
import os
import re

import pytest

from tfxattr.checks import RENAMED
from tfxattr.evaluation import evaluate
from tfxattr.metrics import METRICS, compute, register_metric, unregister_metric
from tfxattr.metrics.registry import CALL_ARGUMENTS


def retired(name):
    """(old, new) for every retired name whose new name ``name`` takes."""
    valid = {*METRICS[name].defaults, *CALL_ARGUMENTS}
    return [(old, new) for old, new in RENAMED.items() if new in valid]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_refuses_retired_option_names(name):
    assert not set(METRICS[name].defaults) & set(RENAMED), "a registered metric still takes a retired name"
    cases = retired(name)
    assert ("target", "targets") in cases  # every metric is called with targets
    for old, new in cases:  # refused before the metric looks at its inputs: no model or images needed
        with pytest.raises(ValueError, match=re.escape(f"metric '{name}': option '{old}' was renamed '{new}'")):
            compute(name, None, None, None, **{old: 1})


def test_the_renames_of_this_issue_are_covered():
    """The metrics' own renames: base -> baseline, PIC's blur_radius -> blur_sigma, draws -> samples."""
    covered = {(name, old) for name in METRICS for old, _ in retired(name)}
    for name in ("insertion", "deletion", "pos_neg", "adp_pic", "sic_aic", "sic_aic_idgi", "mufidelity",
                 "completeness"):
        assert (name, "base") in covered
    assert ("sic_aic_idgi", "blur_radius") in covered and ("sigma_perturbation", "draws") in covered
    assert ("road", "base") not in covered  # road has no baseline: 'base' is only unknown there
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['base'\] for metric 'road'"):
        compute("road", None, None, None, base="black")


def test_a_retired_name_is_refused_in_a_preset_and_by_the_runner(tmp_path):
    def toy(model, images, maps, targets=None, masks=None, batch_size=32, *, baseline="black"):
        raise AssertionError("never called")
    with pytest.raises(ValueError, match="metric 'toy_renamed': give a summary"):  # no docstring to take it from
        register_metric("toy_renamed", toy)
    with pytest.raises(ValueError, match="metric 'toy_renamed': option 'base' was renamed 'baseline'"):
        register_metric("toy_renamed", toy, base="blur")
    assert "toy_renamed" not in METRICS
    register_metric("toy_renamed", toy, "a toy", baseline="blur")
    unregister_metric("toy_renamed")
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="metric 'insertion': option 'base' was renamed 'baseline'"):
        evaluate("shapes:2", ["demo"], ["gradient"], ["insertion:base=blur"], out, progress=False)
    assert not os.path.exists(out)  # refused before anything was written
