"""scikit-learn drop-ins: ``from deltaprop.sklearn import MLPClassifier, MLPRegressor`` in place
of ``from sklearn.neural_network import ...``; the same parameters, attributes and training
rules, with every epoch in deltaprop's C++ engine. Needs scikit-learn and scipy
(``pip install deltaprop[sklearn]``)."""

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
