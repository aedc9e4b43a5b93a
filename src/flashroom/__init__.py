"""flashroom: more application flash for Particle Gen2 devices, with OTA kept.

Importing this package is cheap: subpackages (and heavy dependencies such as matplotlib
and aiocoap) are imported only by the code that needs them.
"""

from flashroom.errors import FlashroomError

__all__ = ["FlashroomError", "__version__"]
__version__ = "0.1.0"
