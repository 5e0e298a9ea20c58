"""The controlled training loop of the thesis (Appendix B) and its best-validation checkpoint."""

from auglens.train.loop import TrainResult, TrainSpec, evaluate, predict_logits, train_model
from auglens.train.order import training_order

__all__ = ["TrainResult", "TrainSpec", "evaluate", "predict_logits", "train_model", "training_order"]
