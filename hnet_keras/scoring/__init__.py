"""Scoring estimators: synthetic evaluation, real image pairs, the robustness sweep, the demo."""
