"""The agents module has no background jobs yet."""

JOBS: tuple = ()
