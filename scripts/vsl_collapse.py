"""Why VSL features fall to chance on mesh data: KL per latent, active units and SVM accuracy
over training, for several KL weights and feature readings (issue 16, item 5).

Data: a ModelNet-style folder of procedural furniture meshes (:mod:`pgm3d.data.mesh_folder`,
chair vs table, 150 + 100 per class, voxelised at 30³ by the folder loader).

    OMP_NUM_THREADS=2 python scripts/vsl_collapse.py [--epochs 40] [--weights 4.5 1 0.001]
        [--init xavier|torch] [--prior learned|standard] [--classes 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from pgm3d.data.loaders import load_voxels
from pgm3d.data.mesh_folder import write_mesh_folder
from pgm3d.experiments.classify import svm_accuracy
from pgm3d.inference import fit
from pgm3d.models import VSL


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--weights", type=float, nargs="+", default=[4.5, 1.0, 1e-3])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--init", choices=["xavier", "torch"], default="xavier")
    ap.add_argument("--prior", choices=["learned", "standard"], default="learned")
    ap.add_argument("--classes", type=int, default=2, help="sizes the latents as the seed does")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        data = load_voxels(write_mesh_folder(root, 150, 100, seed=0), resolution=30)
    train, test = data.subset("train"), data.subset("test")
    x, xt = VSL.rows(train.voxels), VSL.rows(test.voxels)
    y, yt = train.labels.numpy(), test.labels.numpy()
    print(
        "| KL weight | epoch | ELBO/grid | KL per latent z0..z5 (nats) | active units | "
        "SVM (standardised) | SVM (raw) |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|")
    for w in args.weights:
        torch.manual_seed(args.seed)
        model = VSL(30, init=args.init, prior=args.prior, **VSL.sizes_for(args.classes))

        def report(epoch, history, w=w, model=model):
            if (epoch + 1) % args.every and epoch >= 0:
                return False
            model.eval()
            f, ft = model.features(x).numpy(), model.features(xt).numpy()
            acc = svm_accuracy(f, y, ft, yt, "rbf")["accuracy"]
            raw = _raw_svm(f, y, ft, yt)
            act = f.var(0) > 0.01  # active units (Burda et al.): the posterior mean varies
            kls = " ".join(f"{k:.2f}" for k in model.kl_per_latent(x[:200]))
            bound = history.bound[-1] if history is not None and history.bound else float("nan")
            print(f"| {w:g} | {epoch + 1} | {bound:.0f} | {kls} | "
                  f"{int(act.sum())}/{act.size} | {acc:.3f} | {raw:.3f} |",
                  flush=True)  # fmt: skip
            model.train()
            return False

        report(-1, None)
        fit(model, x, "elbo", kl_weight=w, epochs=args.epochs, batch_size=64, lr=args.lr,
            seed=args.seed, progress=False, callbacks=[report])  # fmt: skip


def _raw_svm(f, y, ft, yt) -> float:
    from sklearn.svm import SVC

    return float((SVC(kernel="rbf").fit(f, y).predict(ft) == yt).mean())


if __name__ == "__main__":
    main()
