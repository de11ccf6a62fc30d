from veil.cli import entry_point

entry_point()
