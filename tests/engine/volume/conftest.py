"""Volume tests run torch single-threaded: the parity references were computed that way,
and on 2 shared cores one thread is also the faster setting."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
