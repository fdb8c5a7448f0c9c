"""The site graph of a model, and a check that a guide covers its latents."""

from __future__ import annotations

import networkx as nx
import torch
from pyro.infer.inspect import get_model_relations

from pgm3d.contract import as_model
from pgm3d.inference.base import is_pair

__all__ = ["check_guide", "model_graph"]


def model_graph(
    model, x: torch.Tensor, mask: torch.Tensor | None = None, *, context=None
) -> nx.DiGraph:
    """The model's sample sites as a directed graph (edges parent -> child).

    Built from :func:`pyro.infer.inspect.get_model_relations`. Node attributes:
    ``distribution`` (class name), ``observed`` (bool) and ``plates`` (names of the enclosing
    plates).

    :param model: any model :func:`~pgm3d.contract.as_model` accepts (its model is traced
        with the data filled and masked as every back end sees it), or a model function of
        ``(x, mask)``.
    """
    if is_pair(model):
        pair = as_model(model)
        fn = pair.bind(pair.context_of(context, x)).model
    else:
        fn = model
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


def check_guide(
    model, x: torch.Tensor, mask: torch.Tensor | None = None, guide=None, *, context=None
) -> None:
    """Raise a :class:`~pgm3d.contract.ContractError` (a ``ValueError``) naming every latent
    site of the model that the guide does not sample, any site the guide samples that the
    model does not have, or any other break of the contract (:mod:`pgm3d.contract`)."""
    pair = as_model(model, guide)
    pair.check(x, mask, pair.context_of(context, x))
