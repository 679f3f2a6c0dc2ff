"""The case lifecycle workflow."""
