"""The revisions, oldest first by `down_revision`: one file each, written by `dirchain db revision` and then read."""
