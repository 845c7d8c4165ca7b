"""
Width and depth limits of residual networks commute
===================================================

A residual network whose branches are scaled by ``1/sqrt(depth)`` has two
limits: infinite width (its kernel is :class:`~skinfinite.kernels.ResNetNNGP`
at that depth) and infinite depth. Taking the width to infinity first and
then the depth gives the kernel flow ``ResNetNNGP(depth=np.inf)``; taking
the depth first, at a fixed width, and then the width gives the same kernel.

Below, the empirical NNGP of random finite networks
(:class:`~skinfinite.empirical.ResNetNetwork`) is compared with the flow
kernel over a grid of widths and depths: the error shrinks along both axes
towards the same limit, and the infinite-width kernels at finite depth
(the last row) approach it at the rate 1/depth.
"""
import matplotlib.pyplot as plt
import numpy as np

from skinfinite.empirical import ResNetNetwork
from skinfinite.kernels import ResNetNNGP

X = np.random.default_rng(0).normal(size=(6, 3))
limit = ResNetNNGP(depth=np.inf)(X)
scale = np.abs(limit).max()

widths = [32, 128, 512]
depths = [2, 8, 32, 128]
seeds = range(3)


def empirical_error(width, depth):
    errors = [np.abs(ResNetNetwork(depth=depth, width=width,
                                   random_state=seed).nngp(X) - limit).max()
              for seed in seeds]
    return np.mean(errors) / scale


table = np.array([[empirical_error(w, L) for L in depths] for w in widths])
infinite_width = np.array([np.abs(ResNetNNGP(depth=L)(X) - limit).max() / scale
                           for L in depths])

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for w, row in zip(widths, table):
    left.loglog(depths, row, "o-", label=f"width {w}")
left.loglog(depths, infinite_width, "k^-", label="infinite width")
left.loglog(depths, infinite_width[0] * depths[0] / np.array(depths), "k:",
            label="1/depth")
left.set_xlabel("depth")
left.set_ylabel("relative distance to the flow kernel")
left.set_title("depth at fixed width")
left.legend()

for L, column in zip(depths, table.T):
    right.loglog(widths, column, "o-", label=f"depth {L}")
right.loglog(widths, table[0, -1] * np.sqrt(widths[0] / np.array(widths)),
             "k:", label="width^-1/2")
right.set_xlabel("width")
right.set_title("width at fixed depth")
right.legend()
fig.tight_layout()
plt.show()
