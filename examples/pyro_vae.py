"""Pyro's VAE (``examples/vae/vae.py`` in Pyro), unchanged, through pgm3d: three objectives,
the importance-weighted log-likelihood and four completion back ends on digits with half of
each test image hidden. The model has no mask argument, names its sites ``"latent"`` and
``"obs"``, and never sees a NaN: pgm3d finds the sites by tracing, fills the hidden pixels and
masks the observation per pixel.

    python examples/pyro_vae.py
"""

import pyro
import pyro.distributions as dist
import torch
import torch.nn as nn

PIXELS = 64  # Pyro's example has 784 (28 x 28 MNIST); sklearn's digits are 8 x 8


# -- the model, as Pyro's example writes it ---------------------------------------------------
class Encoder(nn.Module):
    def __init__(self, z_dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, z_dim)
        self.fc22 = nn.Linear(hidden_dim, z_dim)
        self.softplus = nn.Softplus()

    def forward(self, x):
        x = x.reshape(-1, PIXELS)
        hidden = self.softplus(self.fc1(x))
        return self.fc21(hidden), torch.exp(self.fc22(hidden))


class Decoder(nn.Module):
    def __init__(self, z_dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(z_dim, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, PIXELS)
        self.softplus = nn.Softplus()

    def forward(self, z):
        hidden = self.softplus(self.fc1(z))
        return torch.sigmoid(self.fc21(hidden))


class VAE(nn.Module):
    def __init__(self, z_dim=50, hidden_dim=400, use_cuda=False):
        super().__init__()
        self.encoder = Encoder(z_dim, hidden_dim)
        self.decoder = Decoder(z_dim, hidden_dim)
        if use_cuda:
            self.cuda()
        self.use_cuda = use_cuda
        self.z_dim = z_dim

    def model(self, x):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc = torch.zeros(x.shape[0], self.z_dim, dtype=x.dtype, device=x.device)
            z_scale = torch.ones(x.shape[0], self.z_dim, dtype=x.dtype, device=x.device)
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            loc_img = self.decoder.forward(z)
            pyro.sample(
                "obs",
                dist.Bernoulli(loc_img, validate_args=False).to_event(1),
                obs=x.reshape(-1, PIXELS),
            )
            return loc_img

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encoder.forward(x)
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))

    def reconstruct_img(self, x):
        z_loc, z_scale = self.encoder(x)
        z = dist.Normal(z_loc, z_scale).sample()
        return self.decoder(z)


# -- pgm3d on it ------------------------------------------------------------------------------
def digits01():
    """sklearn's digits in [0, 1] (Pyro's MNIST pixels are in [0, 1] too): train and test."""
    from pgm3d.data import open_data

    split = open_data("digits", seed=0)
    return (split.train.float() + 1) / 2, (split.test.float() + 1) / 2


def main():
    from pgm3d.data import random_mask
    from pgm3d.evaluation import evaluate_posteriors
    from pgm3d.inference import complete, fit, log_likelihood

    train, test = digits01()
    test = test[:60]
    print("| objective | final bound (nats/image) | test log-lik, IWAE K=200 |\n|---|---:|---:|")
    for objective in ["elbo", "iwae", "dreg"]:
        pyro.clear_param_store()
        torch.manual_seed(0)
        vae = VAE(z_dim=8, hidden_dim=64)
        history = fit(vae, train, objective, num_particles=4, epochs=15, lr=3e-3, progress=False)
        ll = log_likelihood(vae, test, num_samples=200).mean()
        print(f"| {objective} | {history.bound[-1]:.2f} | {ll:.2f} |")

    mask = random_mask(test.shape, 0.5, generator=torch.Generator().manual_seed(1))
    hidden = torch.where(mask, test, torch.nan)  # NaN where hidden: pgm3d never passes it on
    print("\nCompleting half of each test digit (the DReG-trained VAE):")
    for method, opts in [
        ("pseudo_gibbs", {"warmup": 40, "thin": 2}),
        ("mwg", {"warmup": 40, "thin": 2}),
        ("importance", {"num_proposals": 500}),
        ("nuts", {"chains": 2, "warmup": 30}),
    ]:
        rows = slice(0, 6) if method == "nuts" else slice(None)  # NUTS: a few rows
        done = complete(vae, hidden[rows], mask[rows], method, seed=0, num_samples=20, **opts)
        err = (done.x - test[rows])[~mask[rows]].pow(2).mean()
        print(f"  {method:>12}: imputation MSE {err:.4f} on {done.x.shape[0]} rows")
    table = evaluate_posteriors(
        vae,
        hidden,
        mask,
        ["mwg", "importance"],
        x_true=test,
        options={"mwg": {"warmup": 40, "thin": 2, "seed": 0}, "importance": {"seed": 0}},
        num_khat_samples=200,
    )
    print("\n" + table.to_markdown())


if __name__ == "__main__":
    main()
