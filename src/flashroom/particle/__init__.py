"""Particle firmware modules: parse, verify, build, compress, combine (spec 2, module-format.md)."""
