"""Command-line interface: thin click shells over the API."""
