"""User-facing errors: every message says what went wrong and what to do next."""

#: what every dock says when it needs a plate and none is open (one wording for all of them)
NO_PLATE = "no plate is open; open a plate folder in the Plate browser first"


class DcmixError(Exception):
    """An error caused by the user's input (files, options, checkpoints).

    Front ends show ``str(err)`` as is: the CLI as ``error: …`` with exit code 2, the docks as a napari
    notification. No traceback is shown for these, so the message must stand on its own.
    """


class PlateError(DcmixError):
    """A plate folder, pattern, image or labels file that cannot be used."""


class CheckpointError(DcmixError):
    """A model file that cannot be loaded or does not fit the plate."""


class SourceUnavailable(PlateError):
    """The plate's storage stopped answering (a server error, a timeout, a dropped connection) after retries.

    Unlike a damaged file this is not the site's fault: a long run stops and keeps what it has finished.
    """
