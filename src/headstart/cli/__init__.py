"""The `headstart` command: thin wrappers that parse flags and call the library."""
