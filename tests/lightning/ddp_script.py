"""Run by tests/lightning/test_ddp.py: train a small model with pgm3d.lightning under a
strategy and write every process's final parameters to OUT/rank<r>.safetensors.

    python ddp_script.py OUT STRATEGY DEVICES BATCH EPOCHS

Lightning's ``ddp`` runs this file again in each further process. The guide is a point mass
(amortised), so the objective has no sampling noise and runs with different numbers of
processes can be compared parameter for parameter.
"""

import sys
from pathlib import Path

import lightning as L
import pyro
import pyro.distributions as dist
import torch
from safetensors.torch import save_file
from torch import nn

from pgm3d.lightning import ObjectiveModule, RowsDataModule, release_process_group


class PointGuided(nn.Module):
    """z ~ N(0, I), x ~ N(decoder(z), noise); the guide puts z at encoder(x). The noise scale
    is a pyro.param site, kept in Pyro's param store rather than in the module."""

    def __init__(self, dim=6, latent=2):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 16), nn.Tanh(), nn.Linear(16, dim))
        self.latent = latent

    def model(self, x):
        noise = pyro.param("noise", torch.tensor(1.0), constraint=dist.constraints.positive)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([self.latent]).to_event(1))
            pyro.sample("x", dist.Normal(self.decoder(z), noise).to_event(1), obs=x)

    def guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Delta(self.encoder(x)).to_event(1))


def main(out, strategy, devices, batch, epochs):
    pyro.clear_param_store()
    torch.manual_seed(0)
    x = torch.randn(96, 6) @ torch.randn(6, 6)
    torch.manual_seed(1)
    module = ObjectiveModule(PointGuided(), "elbo", lr=1e-2, seed=0)
    trainer = L.Trainer(
        strategy=strategy,
        accelerator="cpu",
        devices=devices,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, RowsDataModule(x, batch_size=batch, shuffle=False))
    params = {k: v.detach().clone().contiguous() for k, v in module.pair.state_dict().items()}
    params["noise"] = pyro.param("noise").detach().clone().reshape(1)
    save_file(params, str(Path(out) / f"rank{trainer.global_rank}.safetensors"))
    release_process_group()


if __name__ == "__main__":
    out, strategy, devices, batch, epochs = sys.argv[1:]
    main(out, strategy, int(devices), int(batch), int(epochs))
