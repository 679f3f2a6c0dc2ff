"""Intake (submit, details, schema) and the staff admin script, as functions and CLIs."""
