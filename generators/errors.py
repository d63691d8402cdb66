"""Errors of the generators library (it never imports ``loop``; loop wraps these)."""

from __future__ import annotations


class GeneratorError(Exception):
    """Base of every generators error; the message is meant for the user."""


class UnknownTeacherError(GeneratorError):
    """A teacher URI names a prefix no registry entry knows."""


class TeacherError(GeneratorError):
    """A teacher call failed after its retries (timeout, HTTP error, broken body)."""


class TaskError(GeneratorError):
    """A task name is unknown, or the teacher cannot do it honestly."""
