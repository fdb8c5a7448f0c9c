import pyro
import pyro.distributions as dist
import pytest

from pgm3d import FactorAnalysis
from pgm3d.inference import check_guide, model_graph
from pgm3d.models import VAE


@pytest.mark.parametrize("model", [FactorAnalysis.random(5, 2), VAE(5, 2, hidden=(4,))])
def test_model_graph_of_a_latent_variable_model(model):
    x = model.sample(3)
    graph = model_graph(model, x)
    assert set(graph.nodes) == {"z", "x"} and list(graph.edges) == [("z", "x")]
    assert graph.nodes["x"]["observed"] and not graph.nodes["z"]["observed"]
    assert graph.nodes["z"]["plates"] == ["data"]
    assert graph.nodes["z"]["distribution"] == "Normal"
    check_guide(model, x)


def test_check_guide_names_missing_and_extra_sites():
    fa = FactorAnalysis.random(5, 2)
    x = fa.sample(3)

    def wrong(x, mask=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("w", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match=r"does not sample the model's latent site\(s\) \['z'\]"):
        check_guide(fa, x, guide=wrong)

    def extra(x, mask=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", fa.exact_posterior(x, mask))
            pyro.sample("w", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match=r"site\(s\) \['w'\] that the model does not have"):
        check_guide(fa, x, guide=extra)
