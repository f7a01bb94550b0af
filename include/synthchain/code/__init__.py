"""Verified code: problems with tests, candidate solutions from a model, kept only when they pass in the sandbox."""
