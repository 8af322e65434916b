"""Refusals the core gives before any upstream call."""


class InvalidInput(Exception):
    """A user mistake or a limit reached; ``message`` is the one sentence to show them."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AlreadyMade(InvalidInput):
    """A press for what exists already (that upscale was made before): the front end shows job
    ``job_id``'s answer again instead of paying for it twice; ``message`` says so."""

    def __init__(self, message: str, job_id: int):
        super().__init__(message)
        self.job_id = job_id
