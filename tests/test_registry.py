"""One Registry type for every extension point (issue 21): register, refuse a duplicate, unregister, list
summaries, did-you-mean; methods, aggregators, metrics, model sources and data sources are instances."""
import pytest

from tfxattr.evaluation.datasets import DATA_SOURCES
from tfxattr.methods import METHODS
from tfxattr.metrics import METRICS
from tfxattr.models.sources import SOURCES
from tfxattr.paths.aggregators import AGGREGATORS
from tfxattr.registry import Registry


class Entry:
    def __init__(self, summary):
        self.summary = summary


def test_register_refuse_unregister_summaries_and_did_you_mean():
    r = Registry("widget")
    r.register("alpha", Entry("the first"))
    r.register("gamma", Entry("the third"))
    r.register("beta", Entry("the second"), before="gamma")
    assert list(r) == ["alpha", "beta", "gamma"] and len(r) == 3 and "beta" in r
    assert r.summaries() == {"alpha": "the first", "beta": "the second", "gamma": "the third"}
    with pytest.raises(ValueError, match="a widget named 'alpha' is already registered"):
        r.register("alpha", Entry("again"))
    with pytest.raises(ValueError, match=r"unknown widget 'alpah' \(did you mean 'alpha'\?\)"):
        r.find("alpah")
    with pytest.raises(ValueError, match="unknown widget 'gama'.*did you mean 'gamma'"):
        r.register("delta", Entry("x"), before="gama")
    r.unregister("beta")
    assert list(r) == ["alpha", "gamma"]
    with pytest.raises(ValueError, match="unknown widget 'beta'"):
        r.unregister("beta")
    with pytest.raises(TypeError):
        r["omega"] = Entry("no item assignment: register() is the one way in")


@pytest.mark.parametrize("registry", [METHODS, AGGREGATORS, METRICS, SOURCES, DATA_SOURCES],
                         ids=["methods", "aggregators", "metrics", "model sources", "data sources"])
def test_every_extension_point_is_a_registry(registry):
    assert isinstance(registry, Registry) and len(registry) > 0
    summaries = registry.summaries()
    assert list(summaries) == list(registry) and all(isinstance(s, str) and s for s in summaries.values())
    name = next(iter(registry))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(name, registry[name])
    with pytest.raises(ValueError, match=f"did you mean {name!r}"):
        registry.find(name + "x")
