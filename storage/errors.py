"""Errors raised by the storage layer."""


class StorageError(Exception):
    """Base class of storage errors."""


class ConcurrentUpdateError(StorageError):
    """An optimistic-locking check failed: someone else wrote the same row first."""
