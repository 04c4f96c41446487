"""Data for training: dataset readers, a shuffling/prefetching batch iterator, augmentation and
preprocessing. Images are float32 (N, C, H, W) in [0, 1]; labels int64 (N,)."""
from .augment import Compose, RandomCrop, RandomHorizontalFlip, RandomTranslation
from .datasets import (Dataset, load_cifar10, load_dataset, load_digits, load_fashion_mnist,
                       load_mnist, read_cifar10_batch)
from .idx import read_idx, write_idx
from .loader import BatchLoader
from .mnist_seg import SegDataset, load_mnist_seg, make_mosaics
from .preprocess import (Standardize, ZCAWhitening, global_contrast_normalize,
                         local_contrast_normalize)

__all__ = ["Dataset", "load_dataset", "load_digits", "load_mnist", "load_fashion_mnist",
           "load_cifar10", "read_cifar10_batch", "read_idx", "write_idx", "BatchLoader",
           "RandomCrop", "RandomTranslation", "RandomHorizontalFlip", "Compose", "Standardize",
           "ZCAWhitening", "global_contrast_normalize", "local_contrast_normalize"]
__all__ += ["SegDataset", "load_mnist_seg", "make_mosaics"]
