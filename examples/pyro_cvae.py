"""Pyro's conditional VAE (``examples/cvae`` in Pyro; Sohn et al. 2015), unchanged, through
pgm3d: one quadrant of a digit is the input ``xs`` (a *context*: never scored or imputed), the
other three the output ``ys`` (the data). ``fit`` trains it with any objective, and
``log_likelihood`` gives the conditional log-likelihood ``log p(y | x)`` (the paper's CLL),
here beside the deterministic baseline network the CVAE builds on.

The model indexes its outputs with a batch-shaped mask, so it cannot broadcast over an outer
plate of particles; pgm3d notices when it first traces it and lays the particles out as
copies of the batch instead.

    python examples/pyro_cvae.py
"""

import pyro
import pyro.distributions as dist
import torch
import torch.nn as nn

PIXELS = 64  # Pyro's example has 784 (28 x 28 MNIST); sklearn's digits are 8 x 8
SIDE = 8


# -- the baseline and the model, as Pyro's example writes them --------------------------------
class BaselineNet(nn.Module):
    def __init__(self, hidden_1, hidden_2):
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, hidden_1)
        self.fc2 = nn.Linear(hidden_1, hidden_2)
        self.fc3 = nn.Linear(hidden_2, PIXELS)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = x.view(-1, PIXELS)
        hidden = self.relu(self.fc1(x))
        hidden = self.relu(self.fc2(hidden))
        return torch.sigmoid(self.fc3(hidden))


class Encoder(nn.Module):
    def __init__(self, z_dim, hidden_1, hidden_2):
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, hidden_1)
        self.fc2 = nn.Linear(hidden_1, hidden_2)
        self.fc31 = nn.Linear(hidden_2, z_dim)
        self.fc32 = nn.Linear(hidden_2, z_dim)
        self.relu = nn.ReLU()

    def forward(self, x, y):
        xc = x.clone()
        xc[x == -1] = y[x == -1]
        xc = xc.view(-1, PIXELS)
        hidden = self.relu(self.fc1(xc))
        hidden = self.relu(self.fc2(hidden))
        return self.fc31(hidden), torch.exp(self.fc32(hidden))


class Decoder(nn.Module):
    def __init__(self, z_dim, hidden_1, hidden_2):
        super().__init__()
        self.fc1 = nn.Linear(z_dim, hidden_1)
        self.fc2 = nn.Linear(hidden_1, hidden_2)
        self.fc3 = nn.Linear(hidden_2, PIXELS)
        self.relu = nn.ReLU()

    def forward(self, z):
        y = self.relu(self.fc1(z))
        y = self.relu(self.fc2(y))
        return torch.sigmoid(self.fc3(y))


class CVAE(nn.Module):
    def __init__(self, z_dim, hidden_1, hidden_2, pre_trained_baseline_net):
        super().__init__()
        self.baseline_net = pre_trained_baseline_net
        self.prior_net = Encoder(z_dim, hidden_1, hidden_2)
        self.generation_net = Decoder(z_dim, hidden_1, hidden_2)
        self.recognition_net = Encoder(z_dim, hidden_1, hidden_2)

    def model(self, xs, ys=None):
        pyro.module("generation_net", self)
        batch_size = xs.shape[0]
        with pyro.plate("data"):
            with torch.no_grad():
                y_hat = self.baseline_net(xs).view(xs.shape)
            prior_loc, prior_scale = self.prior_net(xs, y_hat)
            zs = pyro.sample("z", dist.Normal(prior_loc, prior_scale).to_event(1))
            loc = self.generation_net(zs)
            if ys is not None:
                mask_loc = loc[(xs == -1).view(-1, PIXELS)].view(batch_size, -1)
                mask_ys = ys[xs == -1].view(batch_size, -1)
                pyro.sample(
                    "y",
                    dist.Bernoulli(mask_loc, validate_args=False).to_event(1),
                    obs=mask_ys,
                )
            else:
                pyro.deterministic("y", loc.detach())
            return loc

    def guide(self, xs, ys=None):
        with pyro.plate("data"):
            if ys is None:
                y_hat = self.baseline_net(xs).view(xs.shape)
                loc, scale = self.prior_net(xs, y_hat)
            else:
                loc, scale = self.recognition_net(xs, ys)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))


# -- the data and the baseline, as Pyro's example prepares them --------------------------------
def quadrant_pairs(images: torch.Tensor, num_quadrant_inputs: int = 1):
    """Inputs ``xs`` (the given quadrants; -1 elsewhere) and outputs ``ys`` (the rest; -1 on
    the inputs) of ``(N, 64)`` images in [0, 1], as Pyro's ``MaskImages`` makes them."""
    img = images.view(-1, SIDE, SIDE)
    out = img.clone()
    h = w = SIDE
    out[:, h // 2 :, : w // 2] = -1
    if num_quadrant_inputs == 2:
        out[:, :, : w // 2] = -1
    if num_quadrant_inputs == 3:
        out[:, : h // 2, :] = -1
    inp = img.clone()
    inp[out != -1] = -1
    return inp.reshape(-1, PIXELS), out.reshape(-1, PIXELS)


def masked_log_lik(probs: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Bernoulli log-likelihood of the output pixels (``xs == -1``) per row."""
    out = xs == -1
    lp = ys * probs.clamp_min(1e-7).log() + (1 - ys) * (1 - probs).clamp_min(1e-7).log()
    return torch.where(out, lp, 0.0).sum(-1)


def train_baseline(xs, ys, epochs=40, hidden=(64, 64), seed=0):
    """The deterministic baseline: masked binary cross-entropy, plain PyTorch."""
    torch.manual_seed(seed)
    net = BaselineNet(*hidden)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for rows in torch.randperm(len(xs)).split(128):
            opt.zero_grad()
            (-masked_log_lik(net(xs[rows]), xs[rows], ys[rows]).sum()).backward()
            opt.step()
    return net.eval()


def main():
    from pgm3d.data import open_data
    from pgm3d.inference import fit, log_likelihood

    split = open_data("digits", seed=0)  # pixels in [0, 1], as Pyro's MNIST
    xs, ys = quadrant_pairs((split.train.float() + 1) / 2)
    xt, yt = quadrant_pairs((split.test[:100].float() + 1) / 2)
    baseline = train_baseline(xs, ys)
    with torch.no_grad():
        base = masked_log_lik(baseline(xt), xt, yt).mean()
    print("Conditional log-likelihood log p(y | x) of 3 quadrants given 1 (100 test digits):\n")
    print("| model | objective | CLL (nats/image) |\n|---|---|---:|")
    print(f"| baseline network | masked BCE | {base:.2f} |")
    for objective in ["elbo", "iwae", "rws"]:
        pyro.clear_param_store()
        torch.manual_seed(0)
        cvae = CVAE(4, 64, 64, baseline)
        fit(cvae, ys, objective, context={"xs": xs}, num_particles=4, epochs=20, lr=3e-3,
            progress=False)  # fmt: skip
        cll = log_likelihood(cvae, yt, context={"xs": xt}, num_samples=500).mean()
        print(f"| CVAE | {objective} | {cll:.2f} |")


if __name__ == "__main__":
    main()
