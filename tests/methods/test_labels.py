"""A method's label (the name a results store keys it by): one formatter, ``specs.spec_label``, for spec text and
methods alike, so one computation has one label and stored labels never change."""
import numpy as np

from tfxattr.evaluation.shards import method_label
from tfxattr.methods import get_method
from tfxattr.specs import Spec, parse_spec, spec_label


def test_a_spec_and_its_method_have_one_label():
    for text in ("ig+idgi", "ig:aggregator=idgi", "ig+idgi:steps=20,baseline=white", "smooth:inner=ig,samples=4"):
        assert method_label(text) == method_label(get_method(text)) == spec_label(get_method(text).name,
                                                                                   get_method(text).changed)
    assert method_label("ig:aggregator=idgi") == "ig+idgi"
    assert method_label("smooth:samples=4,inner=ig") == "smooth:inner=ig,samples=4"  # keys sorted


def test_values_are_written_as_stored_labels_always_were():
    # str() of numbers: a store written before keeps its labels ("50.0" stays "50.0", not "50")
    assert Spec("blur_ig", {"blur_sigma": 50.0, "steps": 8}).label == "blur_ig:blur_sigma=50.0,steps=8"
    assert Spec("iia", {"layers": ("input",)}).label == "iia:layers=(input,)"
    assert parse_spec("sic_aic:thresholds=[0.1,0.3],min_pred_value=0.0").label == \
        "sic_aic:min_pred_value=0.0,thresholds=(0.1,0.3)"
    assert spec_label("x", {"a": np.float64(0.5), "b": np.array(3)}) == "x:a=0.5,b=3"


def test_a_method_or_an_array_as_a_value_is_written_briefly():
    wrapped = get_method("smooth", inner=get_method("ig", steps=20), samples=8)
    assert method_label(wrapped) == "smooth:inner=(ig:steps=20),samples=8"
    assert spec_label("path", {"path": np.zeros((4, 16, 16, 3))}) == "path:path=array(4, 16, 16, 3)"
