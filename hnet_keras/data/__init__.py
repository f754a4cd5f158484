"""Pairs from photos: reading images, the synthesis recipe, augmentation, archives, dataset generation, COCO, loaders."""
