"""Homography estimators: the classical baselines, the method registry, network prediction, ECC refinement."""
