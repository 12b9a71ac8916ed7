"""The one exception type for user mistakes: main.py prints it in one line and exits 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (a flag, a file, a run id); the message names it and says what is wrong."""
