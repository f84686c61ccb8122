"""`python -m massivelens`: the same as the `massivelens` command."""
from massivelens.cli.main import entry

entry()
