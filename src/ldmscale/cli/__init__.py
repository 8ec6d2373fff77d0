"""Thin command-line entrypoints: compose the config, call the library, print the result."""
