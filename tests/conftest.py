import numpy as np
import pytest

import skinfinite


@pytest.fixture(autouse=True)
def _quiet():
    with skinfinite.config_context(show_progress=False):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
