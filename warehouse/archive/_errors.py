"""Exceptions raised by the archive package."""

from __future__ import annotations


class ArchiveError(Exception):
    """Base class of every archive error."""


class SnapshotWriteError(ArchiveError):
    """Publishing a snapshot failed; nothing was published and the archive is unchanged."""


class SnapshotVerificationError(ArchiveError):
    """A snapshot failed verification (tampered, missing or extra files, bad manifest)."""


class OffsiteCopyError(ArchiveError):
    """Copying a snapshot to the off-site destination failed or found a conflicting copy."""
