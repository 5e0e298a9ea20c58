"""Data sets held in memory as uint8 tensors, stratified splits and normalisation statistics."""

from auglens.data.datasets import DATASETS, DATASETS_WITH_MASKS, ImageSet, has_masks, load_dataset
from auglens.data.split import stratified_split, stratified_subset
from auglens.data.transforms import channel_stats, normalize, resize_keep_aspect, resize_masks

__all__ = [
    "DATASETS",
    "DATASETS_WITH_MASKS",
    "has_masks",
    "ImageSet",
    "load_dataset",
    "stratified_split",
    "stratified_subset",
    "channel_stats",
    "normalize",
    "resize_keep_aspect",
    "resize_masks",
]
