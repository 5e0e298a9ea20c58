"""The model registry (its own module so architectures can register without import cycles)."""

from auglens.registry import Registry

MODELS = Registry("model")
