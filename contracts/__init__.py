"""Contracts shared by api/, workflows/ and activities/: settings, workflow inputs and results, IDs."""

VERSION = "0.1.0"
