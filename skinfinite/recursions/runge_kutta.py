"""An explicit Runge-Kutta scheme with equal treatment of every engine.

The stage loop is written once, here, as plain Python on small arrays: the
state ``y[c, j]`` holds component ``c`` (a kernel value or a tangent) of lane
``j`` (a pair of inputs, a block of pairs, or every input), and ``f[s, c, j]``
the slope of stage ``s``.  :func:`make_flow` wraps a *branch*, the
right-hand side of the ODE, into the whole scheme over a sequence of steps;
numba compiles the result into the CPU tile kernels and, as device
functions, into the CUDA kernels, and the NumPy per-input recursion runs it
as Python with a NumPy branch and the compiled stage arithmetic.  The
tableau is :mod:`skinfinite.recursions.dop853` (or forward Euler, one stage
with weight one); the steps are fixed, so there is neither an error estimate
nor a rejected step (the engine chooses the number of steps beforehand).
"""
from numba import njit

from .._core.fastmath import FASTMATH


def stage_input(y, f, A, s, h, z, n_lanes):
    """``z = y + h sum_{q < s} A[s, q] f[q]``: where stage ``s`` evaluates.

    The state is copied first and each earlier slope added in a loop of its
    own, so that the loops over lanes vectorise; the tableau's zeros are
    skipped.
    """
    for c in range(y.shape[0]):
        for j in range(n_lanes):
            z[c, j] = y[c, j]
    for q in range(s):
        a = h * A[s, q]
        if a != 0.0:
            for c in range(y.shape[0]):
                for j in range(n_lanes):
                    z[c, j] += a * f[q, c, j]


def store_slope(z, f, s, n_lanes):
    """Keep the branch's output at stage ``s`` as that stage's slope."""
    for c in range(z.shape[0]):
        for j in range(n_lanes):
            f[s, c, j] = z[c, j]


def step_update(y, f, B, h, n_lanes):
    """``y += h sum_s B[s] f[s]``: the end of a step."""
    for s in range(B.shape[0]):
        b = h * B[s]
        if b != 0.0:
            for c in range(y.shape[0]):
                for j in range(n_lanes):
                    y[c, j] += b * f[s, c, j]


#: the stage arithmetic as Python (for numba's CUDA simulator, whose array
#: stand-ins cannot enter compiled functions) and compiled by numba (for the
#: CPU and CUDA kernels, which inline it, and for NumPy arrays)
STEPS = (stage_input, store_slope, step_update)
COMPILED_STEPS = tuple(njit(inline="always", fastmath=FASTMATH)(fn)
                       for fn in STEPS)


def make_flow(branch, steps=COMPILED_STEPS):
    """The scheme with right-hand side ``branch``, as a Python function.

    ``branch(z, stage, n_lanes, args)`` replaces the first ``n_lanes`` lanes
    of ``z`` by the right-hand side at ``z``; ``stage`` counts the stages of
    all steps (``step * n_stages + s``), so that the branch can find
    per-stage data, and ``args`` is passed through.  The returned
    ``flow(y, z, f, A, B, H, n_lanes, args)`` advances ``y`` in place over
    the steps ``H`` with the tableau ``A`` (stage coefficients) and ``B``
    (weights); ``z`` (shaped as ``y``) and ``f`` (at least ``(len(B),) +
    y.shape``) are the caller's scratch.  ``steps`` is :data:`STEPS` or
    :data:`COMPILED_STEPS`, as the dialect that runs the flow needs.
    """
    start, store, finish = steps

    def flow(y, z, f, A, B, H, n_lanes, args):
        n_stages = B.shape[0]
        for step in range(H.shape[0]):
            h = H[step]
            for s in range(n_stages):
                start(y, f, A, s, h, z, n_lanes)
                branch(z, step * n_stages + s, n_lanes, args)
                store(z, f, s, n_lanes)
            finish(y, f, B, h, n_lanes)
    return flow


def compiled_flow(branch, steps=COMPILED_STEPS):
    """:func:`make_flow` compiled by numba for inlining into tile kernels
    (on the CPU, or on the GPU as a device function)."""
    return njit(inline="always", fastmath=FASTMATH)(make_flow(branch, steps))
