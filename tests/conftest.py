import pyro
import pytest
import torch

F64 = torch.float64


@pytest.fixture(autouse=True)
def _seed_and_clear():
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    yield


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
