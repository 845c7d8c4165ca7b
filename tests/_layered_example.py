"""A layered architecture defined in one place, as a user would add one: a
fully-connected network whose hidden layers are normalised by a geometric
schedule, the weights of hidden layer l drawn with variance
``weight_variance * decay ** (l + 1)`` over the fan-in."""
from skinfinite.kernels import register_architecture
from skinfinite.recursions.layered import LayeredRecursion


def input_layer(g, weight_variance, bias_variance, decay):
    k = weight_variance * g + bias_variance
    return k, k


def hidden_layer(layer, v, vd, t, weight_variance, bias_variance, decay):
    sw2 = weight_variance * decay ** (layer + 1)
    k = sw2 * v + bias_variance
    return k, k + sw2 * vd * t


DECAYING = LayeredRecursion(
    "decaying", input_layer, hidden_layer,
    {"weight_variance": (2.0, (1e-2, 1e2)),
     "bias_variance": (0.1, (1e-5, 1e2)),
     "decay": (0.8, (1e-2, 1e1))},
    description="A fully-connected network whose layers' weight variances "
                "decay geometrically.")

ARCHITECTURE = register_architecture(DECAYING)
DecayingNNGP, DecayingNTK = ARCHITECTURE.nngp, ARCHITECTURE.ntk
