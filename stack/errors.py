"""The one error type of the stack command: a message that says what to do."""


class StackError(RuntimeError):
    """A problem the user can fix; the message says how."""
