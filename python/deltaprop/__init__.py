"""deltaprop: backpropagation for multilayer perceptrons on a C++/OpenMP engine.

    import deltaprop as dp
    net = dp.MLP([64, 128, 64, 10], activation="relu", output="softmax", dtype="float32")
    history = net.fit(X, y, epochs=20, batch_size=32, lr=0.1, momentum=0.9)
"""

from . import diagnostics, ops, plot, reference
from .activations import Activation
from .config import config_info, show_config
from .diagnostics import HealthWarning
from .model import MLP, History

__version__ = "0.1.0"

__all__ = ["MLP", "Activation", "HealthWarning", "History", "config_info", "diagnostics", "ops",
           "plot", "reference", "show_config", "__version__"]
