"""Probe pgm3d with bad input, hostile files and interrupted runs; print what each probe did.

Each probe runs in a fresh Python process in a scratch folder, so the same script measures any
checkout: ``PYTHONPATH=/path/to/checkout python scripts/bad_input_probes.py`` prints one
markdown row per probe — the outcome (exit status, the last line of the error, a traceback or
not) and what it did to the disk (a marker file created by code in a pickle, files changed).
Issue 14's closing note puts the rows of the checkout before and after side by side.
"""

# ruff: noqa: E501 -- each probe is one line of code, as it appears in the table

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PY = sys.executable
VAE = "--model vae --data digits --latent-dim 2 --hidden 8 --iwae-samples 5 --ll-rows 20"

SETUP = """
import os, stat, json, numpy as np, torch, pgm3d
from pathlib import Path
def cli(args):
    import subprocess, sys
    r = subprocess.run([sys.executable, "-m", "pgm3d", *args.split()], capture_output=True,
                       text=True)
    return r
class Payload:
    def __reduce__(self):
        return (open, ("MARKER", "w"))
def evil(path):
    torch.save({"format": "pgm3d-model", "version": 1, "model": Payload()}, path)
"""

#: (probe, code run after SETUP; it prints its own outcome or raises)
PROBES = [
    ("`pgm3d.load` of a pickle whose unpickling writes a file",
     "evil('evil.pt'); pgm3d.load('evil.pt')"),
    ("`pgm3d sample --run` that pickle",
     "evil('evil.pt'); r = cli('sample --run evil.pt --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("`pgm3d complete --run` that pickle",
     "evil('evil.pt'); r = cli('complete --run evil.pt --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("`pgm3d evaluate --run` that pickle",
     "evil('evil.pt'); r = cli('evaluate --run evil.pt --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("`pgm3d fit --resume`, that pickle as the folder's checkpoint.pt",
     f"assert cli('fit {VAE} --epochs 1 --quiet --out run').returncode == 0; evil('run/checkpoint.pt'); r = cli('fit {VAE} --epochs 1 --resume --quiet --out run'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("one flipped byte inside a saved tensor",
     "assert cli('fit --model ppca --data digits --quiet --out m').returncode == 0; b = bytearray(Path('m/model.pt').read_bytes()); b[-3] ^= 1; Path('f.pt').write_bytes(bytes(b)); pgm3d.load('f.pt'); print('loaded')"),
    ("a file without a `model` entry",
     "torch.save({'format': 'pgm3d-model', 'version': 1}, 'n.pt'); pgm3d.load('n.pt')"),
    ("re-running an interrupted `pgm3d fit` without `--resume`",
     f"assert cli('fit {VAE} --epochs 2 --quiet --out run').returncode == 0; os.remove('run/model.pt'); before = Path('run/checkpoint.pt').read_bytes(); r = cli('fit {VAE} --epochs 2 --quiet --out run'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:120], '| checkpoint', 'overwritten' if Path('run/checkpoint.pt').read_bytes() != before else 'kept')"),
    ("`+inf` in a `.npy` of rows",
     "x = np.random.randn(50, 4); x[3, 2] = np.inf; np.save('r.npy', x); r = cli('fit --model ppca --data r.npy --latent-dim 2 --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:150])"),
    ("a complex `.npy`",
     "np.save('c.npy', np.random.randn(50, 4) * (1 + 1j)); r = cli('fit --model ppca --data c.npy --latent-dim 2 --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:150])"),
    ("an all-NaN file, `pgm3d fit --model vae`",
     "np.save('n.npy', np.full((50, 4), np.nan)); r = cli('fit --model vae --data n.npy --epochs 1 --iwae-samples 5 --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:150], json.loads(Path('o/metrics.json').read_text())['test_log_likelihood_nats_per_dim'] if Path('o/metrics.json').exists() else '')"),
    ("`log_likelihood_per_dim` of a row with no observed entry",
     "from pgm3d.models import PPCA; from pgm3d.evaluation import log_likelihood_per_dim; x = torch.randn(30, 4, dtype=torch.float64); m = PPCA.fit(x, 2); mask = torch.ones_like(x, dtype=torch.bool); mask[0] = False; print(log_likelihood_per_dim(m, x, mask)[0][0].item())"),
    ("`pgm3d fit --hidden 0`",
     "r = cli('fit --model vae --data digits --hidden 0 --epochs 1 --iwae-samples 5 --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:150])"),
    ("config `epochs = 1.5`",
     f"Path('c.toml').write_text('epochs = 1.5\\n'); r = cli('fit {VAE} --config c.toml --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:150], 'epochs trained:', json.loads(Path('o/metrics.json').read_text()).get('steps') if Path('o/metrics.json').exists() else '')"),
    ("config `epochs = true`",
     f"Path('c.toml').write_text('epochs = true\\n'); r = cli('fit {VAE} --config c.toml --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:150])"),
    ("config `epochs = \"ten\"` (does the error name the key?)",
     f"Path('c.toml').write_text('epochs = \"ten\"\\n'); r = cli('fit {VAE} --config c.toml --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or [''])[-1][:150])"),
    ("`pgm3d sample -n 0`",
     "assert cli('fit --model ppca --data digits --quiet --out m').returncode == 0; r = cli('sample --run m -n 0 --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("`pgm3d sample -n -3`",
     "assert cli('fit --model ppca --data digits --quiet --out m').returncode == 0; r = cli('sample --run m -n -3 --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("`--device foo`",
     "r = cli('fit --model ppca --data digits --device foo --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("`--kl-weight nan`",
     f"r = cli('fit {VAE} --kl-weight nan --epochs 1 --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("`--seed 2**70`",
     f"r = cli('fit --model ppca --data digits --seed {2**70} --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("API `fit(device='cuda')` without CUDA",
     "from pgm3d.models import VAE; from pgm3d.inference import fit; fit(VAE(4, 2), torch.randn(8, 4), device='cuda', progress=False)"),
    ("API values of 1e30 (float32)",
     "from pgm3d.models import VAE; from pgm3d.inference import fit; fit(VAE(4, 2), torch.randn(8, 4) * 1e30, epochs=1, progress=False); print('trained')"),
    ("API `lr=inf`",
     "from pgm3d.models import VAE; from pgm3d.inference import fit; fit(VAE(4, 2), torch.randn(8, 4), lr=float('inf'), epochs=1, progress=False); print('trained')"),
    ("API float16 training",
     "from pgm3d.models import VAE; from pgm3d.inference import fit; fit(VAE(4, 2).half(), torch.randn(8, 4).half(), epochs=1, progress=False); print('trained')"),
    ("an unreadable `.npy` given as `--data`",
     "Path('bad.npy').write_bytes(b'\\x93NUMPY junk'); r = cli('fit --model ppca --data bad.npy --quiet --out o'); print(r.returncode, r.stderr.strip().splitlines()[-1][:150])"),
    ("a ModelNet folder with one unreadable file",
     "from pgm3d.data.loaders import load_voxels, save_voxels\ng = np.zeros((8, 8, 8), bool); g[2:6, 2:6, 2:6] = True\nfor c in ('a', 'b'):\n    for s in ('train', 'test'):\n        Path(f'M/{c}/{s}').mkdir(parents=True); save_voxels(f'M/{c}/{s}/x.npy', g)\nPath('M/b/train/broken.npy').write_bytes(b'junk')\nimport warnings; warnings.simplefilter('ignore'); print('loaded', len(load_voxels('M', progress=False)), 'grids')"),
    ("a refused run: is its `--out` folder left claimed?",
     "r = cli('fit --model ppca --data missing.npy --quiet --out o'); print(r.returncode, '| folder left:', sorted(os.listdir('o')) if os.path.isdir('o') else 'none')"),
    ("file modes under umask 022: checkpoint vs figure",
     f"assert cli('fit {VAE} --epochs 1 --quiet --out o').returncode == 0; print({{p: oct(stat.S_IMODE(os.stat('o/' + p).st_mode)) for p in ('checkpoint.pt', 'training_curve.png')}})"),
    ("a CSV with a header row",
     "Path('h.csv').write_text('a,b,c\\n' + '\\n'.join(','.join(str(v) for v in r) for r in np.random.randn(40, 3))); r = cli('fit --model ppca --data h.csv --latent-dim 1 --quiet --out o'); print(r.returncode, (r.stderr.strip().splitlines() or ['read'])[-1][:150])"),
]  # fmt: skip


def probe(code: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        os.umask(0o022)
        r = subprocess.run(
            [PY, "-c", SETUP.replace("MARKER", str(Path(tmp) / "MARKER")) + textwrap.dedent(code)],
            cwd=tmp,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        lines = r.stderr.strip().splitlines()
        if r.returncode == 0:
            out = "ran: " + " ".join(r.stdout.split())[:200]
        elif "Traceback" in r.stderr:
            out = f"raised {lines[-1][:160]}"
        else:
            out = f"exit {r.returncode}: {lines[-1][:160] if lines else ''}"
        if (Path(tmp) / "MARKER").exists():
            out += " — **code in the file ran (marker written)**"
        return out.replace("|", "/")


def main() -> None:
    print("| probe | outcome |")
    print("|---|---|")
    for name, code in PROBES:
        print(f"| {name} | {probe(code)} |", flush=True)


if __name__ == "__main__":
    main()
