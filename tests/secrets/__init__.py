"""Secrets: keys encrypted and private on disk, never in a log, never committed (issue 8)."""
