"""Patch, build and package Device OS 2.3.1 for the extended Electron layout (spec 9, 10).

"devos" is the work on Device OS's own sources: :mod:`~flashroom.devos.changes` (flashroom's
hunks, as data), :mod:`~flashroom.devos.patch` (apply, check, emit a diff),
:mod:`~flashroom.devos.build` (run Device OS's makefiles, collect verified modules),
:mod:`~flashroom.devos.manifest` (``manifest.json``), :mod:`~flashroom.devos.package` (DfuSe
files and flashing instructions) and :mod:`~flashroom.devos.reference` (the cached reference
build the tests and benchmarks share). Facts about Device OS itself live elsewhere.
"""
