"""The site graph of a model, and a check that a guide covers its latents."""

from __future__ import annotations

import networkx as nx
import pyro.poutine as poutine
import torch
from pyro.infer.inspect import get_model_relations
from pyro.poutine.util import prune_subsample_sites

__all__ = ["check_guide", "model_graph"]


def model_graph(model, x: torch.Tensor, mask: torch.Tensor | None = None) -> nx.DiGraph:
    """The model's sample sites as a directed graph (edges parent -> child).

    Built from :func:`pyro.infer.inspect.get_model_relations`. Node attributes:
    ``distribution`` (class name), ``observed`` (bool) and ``plates`` (names of the enclosing
    plates).

    :param model: a pgm3d model (its ``model`` method is traced) or a model function.
    """
    fn = getattr(model, "model", model)
    relations = get_model_relations(fn, model_args=(x, mask))
    graph = nx.DiGraph()
    plates = relations["plate_sample"]
    for site, parents in relations["sample_sample"].items():
        graph.add_node(
            site,
            distribution=relations["sample_dist"][site],
            observed=site in relations["observed"],
            plates=sorted(p for p, sites in plates.items() if site in sites),
        )
        for parent in parents:
            graph.add_edge(parent, site)
    return graph


def check_guide(model, x: torch.Tensor, mask: torch.Tensor | None = None, guide=None) -> None:
    """Raise a :class:`ValueError` naming every latent site of the model that the guide does
    not sample, or any site the guide samples that the model does not have."""
    graph = model_graph(model, x, mask)
    latents = {n for n, a in graph.nodes(data=True) if not a["observed"]}
    guide = model.guide if guide is None else guide
    with poutine.block():
        trace = prune_subsample_sites(poutine.trace(guide).get_trace(x, mask))
    sampled = {n for n, s in trace.nodes.items() if s["type"] == "sample"}
    if latents - sampled:
        raise ValueError(
            f"the guide does not sample the model's latent site(s) {sorted(latents - sampled)}"
        )
    extra = sampled - set(graph.nodes)
    if extra:
        raise ValueError(f"the guide samples site(s) {sorted(extra)} that the model does not have")
