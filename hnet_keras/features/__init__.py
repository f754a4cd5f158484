"""Keypoints and descriptors: SuperPoint and dense descriptors, learned beside the homography networks."""
