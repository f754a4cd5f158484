"""hnet_keras: a Keras 3 toolkit for HomographyNet (DeTone et al., 2016).

Names are imported lazily, so ``import hnet_keras`` and the dataset workers stay
light: Keras (and its backend) loads only when a Keras-facing name is used.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # geometry
    "offsets_to_homography": "geometry",
    "homography_to_offsets": "geometry",
    "warp_points": "geometry",
    "corner_errors": "geometry",
    "mean_corner_error": "geometry",
    # synthesis and images
    "SynthesisConfig": "synthesis",
    "TRAIN_PROTOCOL": "synthesis",
    "PAPER_TEST_PROTOCOL": "synthesis",
    "prepare_image": "synthesis",
    "sample_pair": "synthesis",
    "read_grayscale": "images",
    "list_images": "images",
    "embedded_photo_paths": "images",
    # archives
    "write_archive": "archive",
    "read_archive": "archive",
    "ArchiveError": "archive",
    "generate_dataset": "generate",
    # loaders
    "data_loader": "loaders",
    "ArchiveDataset": "loaders",
    "OnTheFlyDataset": "loaders",
    "synthesize_pairs": "synthesis",
    "normalize_images": "synthesis",
    "normalize_offsets": "synthesis",
    "load_prepared_images": "synthesis",
    # losses and models
    "euclidean_l2": "losses",
    "sequence_l1": "losses",
    "MACE": "losses",
    "build_model": "models",
    "offsets_to_bins": "models",
    "decode_bins": "models",
    "corner_confidence": "models",
    "bin_centres": "models",
    # training and prediction
    "train": "training",
    "Preset": "training",
    "PRESETS": "training",
    "get_preset": "training",
    "TrainResult": "training",
    "predict_offsets": "predict",
    "estimate_homography": "predict",
    "held_out_error": "predict",
    "HeldOutError": "predict",
    "refine_homography": "refine",
    "align_images": "refine",
    "Augmentation": "augment",
    "augment_pairs": "augment",
    "read_history": "history",
    "load_checkpoint": "checkpoint",
    "load_pretrained": "checkpoint",
    "export_checkpoint": "checkpoint",
    # evaluation
    "BASELINES": "methods",
    "get_method": "methods",
    "network_method": "methods",
    "Evaluation": "evaluation",
    "PairSet": "evaluation",
    "evaluate": "evaluation",
    "load_test_set": "evaluation",
    "PROTOCOLS": "evaluation",
    "load_real_pairs": "real_pairs",
    "evaluate_real_pairs": "real_pairs",
    "robustness_sweep": "robustness",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hnet_keras' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
