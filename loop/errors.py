"""The error hierarchy. Core code raises these; the CLI and the TUI turn them into words."""

from __future__ import annotations


class SynthloopError(Exception):
    """Base of every error a user should see as one clear line, never a traceback."""

    title = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(SynthloopError):
    """A config file or flag is wrong: unknown key, wrong type, unreadable file."""

    title = "config error"


class InputError(SynthloopError):
    """A user-supplied input (a path, an eval set, a document) cannot be used."""

    title = "input error"


class UsageError(SynthloopError):
    """A command was called in a way that cannot be answered (an ambiguous choice): exit
    code 2, like a flag that does not exist."""

    title = "usage error"
    exit_code = 2


class UnknownPrefixError(ConfigError):
    """A model/embedder URI names a prefix no registry knows."""

    title = "unknown prefix"


class WorkspaceError(SynthloopError):
    """The workspace folder or its ledger is missing, damaged or not writable."""

    title = "workspace error"


class WorkspaceBusyError(WorkspaceError):
    """Another process holds the workspace's write lock."""

    title = "workspace busy"


class StageError(SynthloopError):
    """A pipeline stage failed; what it had finished is kept."""

    title = "stage failed"
