"""The one exception type for user mistakes: main.py prints it in one line and exits 2, no traceback."""
import re

PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


class UserError(Exception):
    """Bad input from the user (a flag, a file, a run id); the message names it and says what is wrong."""


def check_plain_name(flag: str, value: str) -> str:
    """`value` if it is a plain file name (letters, digits, _ - ., not starting with .), else a UserError.
    Names of new runs and recorded datasets become directories under logs/ and data/: a path, `..`, a hidden
    name or a newline would put them elsewhere or make them hard to spot."""
    if not PLAIN_NAME.fullmatch(value):
        raise UserError(f"{flag} {value!r}: use a plain name (letters, digits, _ - .; not starting with .)")
    return value
