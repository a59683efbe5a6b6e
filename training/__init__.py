"""Command-line scripts: train.py, evaluate.py, publish.py (importable for the tests)."""
