import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """On a small shared CPU box one thread is several times faster than two oversubscribed ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
