"""Errors a user can act on. The CLI prints their message and exits non-zero, never a traceback."""


class PortraitError(Exception):
    """Base class: the message says what is wrong, where, and what to do."""


class ContractError(PortraitError):
    """Input breaks the data contract (schema break, or too many bad rows)."""


class SettingsError(PortraitError):
    """A setting is missing, unknown or out of range."""


class NotEnoughData(PortraitError):
    """These (valid) data cannot support a part of the run; the run skips it with this reason."""
