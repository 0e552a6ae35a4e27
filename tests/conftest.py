"""Shared test setup: a fixed CPU thread count and the (slow-ish to fit) digits judge."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)  # tests use small tensors: one thread is fastest and stable


@pytest.fixture(scope="session")
def digits_judge():
    from diffnlp.evaluation.metrics import DigitsJudge

    return DigitsJudge(seed=0)
