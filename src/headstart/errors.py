"""The one exception type that reaches the user as a single line and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: the message names the problem and the fix, in one line.

    The CLI prints it without a traceback and exits with code 2. Library code raises it
    wherever the cause is something the user gave (a path, a file, a flag), never for bugs.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} — {fix}")
        self.problem = problem
        self.fix = fix
