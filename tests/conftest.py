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


@pytest.fixture
def mixed_csv(tmp_path):
    """A CSV table with numeric and categorical features, missing cells and a
    text target (``label``); 60 rows, one of them without a target."""
    from ._tables import write_mixed_table

    return write_mixed_table(tmp_path / "shapes.csv")
