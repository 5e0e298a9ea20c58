"""auglens: what does a data augmentation change in what an image classifier has learned?

Stages (one sub-package each, dependencies flow one way):
data -> augment -> models -> train -> cam -> metrics -> analysis -> report; ``config``, ``store``, ``study``
and ``cli`` sit on top.
"""

__version__ = "0.1.0"
