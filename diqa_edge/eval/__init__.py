"""Evaluation: how a model's answers are judged and how its accept / retake rule is chosen.

Owns the skin gate (rule search on validation views, acceptance tables with
intervals, ROC plots) and the classical baseline a learned gate must beat.
Imports only ``sdk`` and ``contract`` (views arrive as plain arrays); training and export call it.
"""
