"""Errors that reach the user as one line: the CLI prints them, the app shows them."""
from __future__ import annotations


class EngineError(Exception):
    """Base class; str(error) is the whole message for the user."""


class BadRequest(EngineError):
    """The request itself is wrong (empty prompt, size not on the token grid, unknown block)."""


class ModelLoadError(EngineError):
    """The model could not be found or loaded."""


class UnsupportedModel(EngineError):
    """The pipeline's transformer class has no adapter."""


class OutOfMemory(EngineError):
    """The device ran out of memory; the session written so far stays readable."""


class Cancelled(EngineError):
    """The user cancelled; raised from inside a block hook."""


class SessionWriteFailed(EngineError):
    """The session could not be written (a full disk, a failing file system); the run stops and the
    file keeps the steps written before."""
