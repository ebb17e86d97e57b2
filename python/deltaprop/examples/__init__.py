"""Runnable studies: ``python -m deltaprop.examples.vanishing``."""
