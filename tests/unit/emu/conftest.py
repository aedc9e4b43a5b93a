"""Shared helpers for the emulator tests: cached module builders."""

from __future__ import annotations

import functools

from flashroom.particle.build import synthetic_module, synthetic_user_app
from flashroom.particle.module_info import ModuleDependency


@functools.lru_cache(maxsize=64)
def user_app(size: int, *, platform: str = "electron", seed: int = 0, version: int = 6) -> bytes:
    """A user part of exactly ``size`` bytes (cached: building is the slow part)."""
    return synthetic_user_app(size, platform=platform, seed=seed, version=version)


@functools.lru_cache(maxsize=64)
def module(
    size: int,
    *,
    platform_id: int,
    function: int,
    index: int,
    version: int,
    start_address: int,
    dependency: ModuleDependency | None = None,
    dependency2: ModuleDependency | None = None,
    seed: int = 0,
) -> bytes:
    """Any synthetic module (cached)."""
    return synthetic_module(
        size,
        platform_id=platform_id,
        function=function,
        index=index,
        version=version,
        start_address=start_address,
        dependency=dependency,
        dependency2=dependency2,
        seed=seed,
    )
