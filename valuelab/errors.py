"""Errors that reach the user: each says what is wrong, where, and what to do."""

from __future__ import annotations


class ValuelabError(Exception):
    """Base class for errors shown to the user as one line, without a traceback."""


class InputError(ValuelabError):
    """Bad input data: names the file, the line (1-based) or item, the field, and what is wrong."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = ""
        if file is not None:
            where = str(file) + (f":{line}" if line is not None else "")
        if field is not None:
            where = f"{where} field {field!r}" if where else f"field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)


class ModelSpecError(ValuelabError):
    """An unknown or malformed model spec string."""


class BackendError(ValuelabError):
    """A backend could not be reached or refused a request it should have served."""


class DeviceError(ValuelabError):
    """A torch device that does not exist on this machine (``--device cuda`` without a GPU, say)."""
