"""The ``colearn`` command: a thin shell that parses, calls the library and prints."""
