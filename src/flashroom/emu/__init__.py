"""flashroom.emu: a bit-accurate Particle Gen2 device (spec 1-5, 8, 9).

* :mod:`flashroom.emu.flash`: NOR flash, one mutation primitive, op counting, power-cut hook.
* :mod:`flashroom.emu.dct`: the double-buffered DCD store and the flash-modules table.
* :mod:`flashroom.emu.sysflags`: system flags in RTC backup registers.
* :mod:`flashroom.emu.flashmal`: Device OS flash_mal primitives (range, info, CRC, copy, erase).
* :mod:`flashroom.emu.bootloader`, :mod:`flashroom.emu.system`: the two firmwares.
* :mod:`flashroom.emu.profiles`: stock / extended behaviour as data (module_bounds_t tables).
* :mod:`flashroom.emu.device`: ``Device``, ``Outcome``; :mod:`flashroom.emu.image`: image file.
* :mod:`flashroom.emu.inspect`: the flash map for ``emu show``.

Nothing is imported here, so ``import flashroom.emu`` stays light.
"""
