"""Datasets, generators and formats; importing this package registers the built-in datasets and generators.

Entry point: :func:`open_dataset` (``name``, ``split`` -> map-style dataset of sample dicts, see
:mod:`slotvideo.data.batch` for the keys).
"""
from .batch import Batch, collate
from .generated import (DIRECTIONS, MOVE_NAMES, SPLITS, GeneratedDataset, GeneratedStream, Generator,
                        generator_for, open_dataset, open_generated, stream_dataset)
from .shards import ShardedDataset, read_meta, to_sample, write_dataset
from . import synthetic  # noqa: F401  (registers the generators)
from . import reasoning  # noqa: F401  (registers clevrer-mini and cater-mini)
from . import cater, clevrer, kinetics  # noqa: F401  (registers the real datasets)
from . import fixtures  # noqa: F401  (registers kinetics600-fixture)

__all__ = ["Batch", "collate", "DIRECTIONS", "MOVE_NAMES", "SPLITS", "GeneratedDataset", "GeneratedStream",
           "Generator", "ShardedDataset", "generator_for", "open_dataset", "open_generated", "read_meta",
           "stream_dataset", "to_sample", "write_dataset"]
