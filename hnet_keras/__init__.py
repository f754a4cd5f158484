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
    "SynthesisConfig": "data.synthesis",
    "TRAIN_PROTOCOL": "data.synthesis",
    "PAPER_TEST_PROTOCOL": "data.synthesis",
    "prepare_image": "data.synthesis",
    "sample_pair": "data.synthesis",
    "read_grayscale": "data.images",
    "list_images": "data.images",
    "embedded_photo_paths": "data.images",
    # archives
    "write_archive": "data.archive",
    "read_archive": "data.archive",
    "ArchiveError": "data.archive",
    "generate_dataset": "data.generate",
    # loaders
    "data_loader": "data.loaders",
    "ArchiveDataset": "data.loaders",
    "OnTheFlyDataset": "data.loaders",
    "synthesize_pairs": "data.synthesis",
    "normalize_images": "data.synthesis",
    "normalize_offsets": "data.synthesis",
    "load_prepared_images": "data.synthesis",
    # losses and models
    "euclidean_l2": "nets.losses",
    "sequence_l1": "nets.losses",
    "MACE": "nets.losses",
    "build_model": "nets.models",
    "offsets_to_bins": "nets.targets",
    "decode_bins": "nets.targets",
    "corner_confidence": "nets.targets",
    "bin_centres": "nets.targets",
    # training and prediction
    "train": "training.run",
    "Preset": "training.presets",
    "PRESETS": "training.presets",
    "get_preset": "training.presets",
    "TrainResult": "training.run",
    "predict_offsets": "estimators.predict",
    "estimate_homography": "estimators.predict",
    "estimate_homographies": "estimators.predict",
    "coarse_homographies": "estimators.predict",
    "EstimateWarning": "estimators.predict",
    "held_out_error": "scoring.evaluation",
    "HeldOutError": "scoring.evaluation",
    "refine_homography": "estimators.refine",
    "align_images": "estimators.refine",
    "Augmentation": "data.augment",
    "augment_pairs": "data.augment",
    "read_history": "training.history",
    "load_checkpoint": "nets.checkpoint",
    "load_pretrained": "nets.checkpoint",
    "export_checkpoint": "nets.checkpoint",
    # evaluation
    "BASELINES": "estimators.methods",
    "get_method": "estimators.methods",
    "network_method": "estimators.methods",
    "Evaluation": "scoring.evaluation",
    "PairSet": "scoring.evaluation",
    "evaluate": "scoring.evaluation",
    "load_test_set": "scoring.evaluation",
    "PROTOCOLS": "scoring.evaluation",
    "load_real_pairs": "scoring.real_pairs",
    "evaluate_real_pairs": "scoring.real_pairs",
    "robustness_sweep": "scoring.robustness",
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
