"""Particle firmware modules: parse, verify, build, compress, combine (spec 2, module-format.md).

Submodules (imported on demand to keep ``import flashroom`` light):

* :mod:`~flashroom.particle.module` - ``parse_module(data, filename)``, ``Module``
  (``Module.from_path``, checks, ``to_json``, ``to_reference_json``);
* :mod:`~flashroom.particle.parser` - the reference tool's offset search, prefix and suffix;
* :mod:`~flashroom.particle.build` - ``build_module``, ``synthetic_module``,
  ``device_os_install``, ``synthetic_user_app``;
* :mod:`~flashroom.particle.compress` - ``compress_module``, ``decompress_module``,
  ``combine_modules``, ``split_modules``;
* :mod:`~flashroom.particle.deps` - ``check_dependencies`` (the device's rule);
* :mod:`~flashroom.particle.pack` / :mod:`~flashroom.particle.placement` - ``module pack``.
"""
