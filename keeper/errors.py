"""One exception root, split by what the loop does next."""


class KeeperError(Exception):
    """Root of every error keeper raises on purpose."""


class ConfigError(KeeperError):
    """Bad configuration or environment: stop at start-up with the message."""


class TransientError(KeeperError):
    """A read failed or returned garbage: retry on the next block."""


class SkipAction(KeeperError):
    """Drop one action (simulation reverted, unprofitable, over a cap); the loop goes on."""


class ExecutionError(KeeperError):
    """One transaction failed (nonce, underpriced, reverted on chain)."""


class StorageError(KeeperError):
    """The journal (or a checkpoint file) cannot be read or written: a full or read-only disk.
    Nothing is sent while it lasts; monitoring goes on, and sending resumes when writes succeed."""


class FatalError(KeeperError):
    """Stop the keeper and alert (e.g. the RPC is on another chain)."""
