"""``flashroom module``: inspect, verify, pack, compress, decompress, combine, split, deps.

A thin shell over :mod:`flashroom.particle`: parse options, call one API function, render.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from flashroom.atomicfile import check_output_file, write_bytes_atomic, write_file_set
from flashroom.cli.common import (
    ADDRESS,
    SIZE,
    CheckFailed,
    FlashroomGroup,
    PathType,
    emit_json,
    format_option,
    progress_bar,
    stdout_console,
    warn,
)
from flashroom.cli.options import out_dir_option, output_option, platform_option
from flashroom.errors import ChecksumError, FlashroomError, ModuleFormatError, UsageError
from flashroom.particle.compress import (
    combine_modules,
    combined_apply_warnings,
    compress_module,
    compressed_apply_warnings,
    decompress_module,
    split_modules,
)
from flashroom.particle.deps import check_dependencies, require_same_platform
from flashroom.particle.module import function_name, parse_module, read_module_file
from flashroom.particle.pack import PackRequest, pack_module
from flashroom.ranges import fmt_addr

#: The most ``module pack`` reads: an ELF with its debug sections, or a raw image (which must
#: then fit a region of at most 1 MB anyway).
MAX_PACK_INPUT_SIZE = 64 * 1024 * 1024


def _read(path: str, *, limit: int | None = None) -> bytes:
    """A module file's bytes (a regular file, bounded by the largest module)."""
    if limit is None:
        return read_module_file(path)
    return read_module_file(path, limit=limit)


@contextmanager
def _about(path: str) -> Iterator[None]:
    """Prefix the file name to a library error that does not name it (the library sees bytes)."""
    try:
        yield
    except ModuleFormatError as e:
        if str(e).startswith(path):
            raise
        err = ModuleFormatError(f"{path}: {e}")
        err.field, err.offset = e.field, e.offset
        raise err from None
    except UsageError as e:
        if str(e).startswith(path):
            raise
        raise UsageError(f"{path}: {e}") from None


def _parse(path: str) -> Any:
    """Read and parse one module, naming the file in any error."""

    data = _read(path)
    with _about(path):
        return parse_module(data, path)


def _refuse_corrupt(path: str, data: bytes, action: str) -> None:
    """Refuse to rewrite a combined file, or a module whose CRC-32 is wrong (spec-silent
    policy of the CLI).

    A combined file is refused as such (exit 2, field ``flags``): combining or compressing
    it again would nest a chain no device walks. compress/combine recompute the CRC-32
    (module-format.md 6.1-6.2), which would hide the damage from the device's own check
    (spec 3.2); the library follows the reference tool and does not verify, so the command
    does.
    """

    with _about(path):
        m = parse_module(data, path)
    if m.is_combined:
        # Checked first: the whole-file CRC-32 of a combined file never matches (it covers
        # every part, each sealed on its own, module-format.md 6.2), so the CRC check below
        # would call a good combined file corrupt (issue 12 item 16).
        chain = (
            f"{len(m.combined)} modules"
            if m.combined is not None
            else "a chain flashroom cannot walk"
        )
        raise ModuleFormatError(
            f"{path}: refusing to {action} a file that is already combined ({chain}; flag "
            f"COMBINED 0x04 is set in flags 0x{m.info.flags:02x} of the module_info_t at offset "
            f"{m.prefix_offset}): expected single modules; split it first "
            "(flashroom module split)",
            offset=m.prefix_offset + 9,
            field="flags",
        )
    if not m.crc_ok:
        raise ChecksumError(
            f"{path}: refusing to {action} a corrupt module (the new CRC-32 would hide the "
            "damage); CRC-32",
            stored=f"0x{m.crc_stored:08x}",
            computed=f"0x{m.crc_computed:08x}",
        )


_output_option = output_option()


@click.group(cls=FlashroomGroup, context_settings={"help_option_names": ["-h", "--help"]})
def module() -> None:
    """Inspect, verify, build, compress and combine Particle firmware modules.

    Field for field compatible with Particle's binary-version-reader.

    \b
    Examples:
      flashroom module inspect firmware.bin
      flashroom module pack app.elf --platform electron --function user --index 1 \\
          --version 6 --depends system:2:2302 --layout extended -o app.bin
      flashroom module deps app.bin --against system-part1.bin system-part2.bin
    """


# --- inspect / verify ------------------------------------------------------------------------


def _inspect_files(files: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[Any], int]:
    """Parse every file; returns (json objects, modules or errors, exit code)."""

    results: list[dict[str, Any]] = []
    parsed: list[Any] = []
    worst = 0
    with progress_bar("inspecting", len(files)) as progress:
        for i, name in enumerate(files):
            try:
                data = _read(name)
                # flashroom devos: a .dfu shows its elements and the module in each
                m = _inspect_dfu(data, name) if _is_dfu(data, name) else parse_module(data, name)
            except FlashroomError as e:
                results.append(
                    {
                        "file": name,
                        "error": {
                            "message": str(e),
                            "field": getattr(e, "field", None),
                            "offset": getattr(e, "offset", None),
                        },
                        "ok": False,
                        "warnings": [],
                    }
                )
                parsed.append(e)
                worst = 2
            else:
                results.append({**m.to_json(), "warnings": _module_warnings(m)})
                parsed.append(m)
                if not m.ok and worst < 1:
                    worst = 1
            progress(i + 1, len(files))
    return results, parsed, worst


def _module_warnings(m: Any) -> list[str]:
    """What the module's own platform cannot do with it (compressed or combined on Gen2)."""
    if not hasattr(m, "is_compressed"):  # a .dfu: its modules are judged one by one
        return [w for x in m.modules if x is not None for w in _module_warnings(x)]
    if m.is_compressed and m.combined is None:
        return compressed_apply_warnings(m.data)
    if m.combined is not None:
        return combined_apply_warnings([p.module.data for p in m.combined])
    return []


def _is_dfu(data: bytes, name: str) -> bool:
    from flashroom.particle.dfu_inspect import looks_like_dfu

    return looks_like_dfu(data, name)


def _inspect_dfu(data: bytes, name: str) -> Any:
    from flashroom.particle.dfu_inspect import inspect_dfu

    with _about(name):
        return inspect_dfu(data, name)


def _render_module_text(m: Any, console: Any) -> None:
    from rich.table import Table  # rich: deferred for start-up time

    i = m.info
    t = Table(title=f"{m.filename}  ({len(m.data)} bytes)", show_header=False, title_justify="left")
    t.add_column("field", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")  # hashes fold onto the next line, never cut
    t.add_row("platform_id", str(i.platform_id))
    t.add_row(
        "module", f"{function_name(i.module_function)} ({i.module_function}) idx {i.module_index}"
    )
    t.add_row("module_version", str(i.module_version))
    t.add_row(
        "addresses",
        f"{fmt_addr(i.module_start_address)} .. {fmt_addr(i.module_end_address)} "
        f"({i.module_length} bytes + 4 CRC)",
    )
    t.add_row("module_flags", f"0x{i.flags:02x}")
    t.add_row("prefix", f"offset {m.prefix_offset}, size {m.prefix_size}")
    for n, d in (("dependency", i.dependency), ("dependency2", i.dependency2)):
        if not d.is_none:
            t.add_row(
                n,
                f"{function_name(d.module_function)} idx {d.module_index} >= {d.module_version}",
            )
    s = m.suffix
    if s.has_product_fields:
        t.add_row("product", f"id {s.product_id}, version {s.product_version}")
    else:
        t.add_row("product", f"none (suffix_size {s.suffix_size} < 40)")
    t.add_row("suffix_size", str(s.suffix_size))
    t.add_row("sha256", s.sha256.hex())
    for e in list(m.prefix_extensions or ()) + list(s.extensions):
        t.add_row("extension", f"type {e.type} len {e.length} @ {e.offset}")
    if m.compressed is not None:
        c = m.compressed
        t.add_row(
            "compressed",
            f"method {c.method}, window bits {c.window_bits}, original {c.original_size} bytes",
        )
    if m.combined is not None:
        for p in m.combined:
            pi = p.module.info
            t.add_row(
                "part",
                f"@{p.offset}: {function_name(pi.module_function)} idx {pi.module_index} "
                f"v{pi.module_version}, {len(p.module.data)} bytes",
            )
    for c in m.checks():
        mark = "[green]ok[/green]" if c.ok else "[red]FAIL[/red]"
        t.add_row(f"check {c.name}", f"{mark} {c.detail}")
    console.print(t)


def _report(files: tuple[str, ...], fmt: str, verify_only: bool) -> None:
    results, parsed, worst = _inspect_files(files)
    # Unparseable files are named on stderr in both formats (the JSON carries them too).
    for name, item in zip(files, parsed, strict=True):
        if isinstance(item, FlashroomError):
            msg = str(item)
            click.echo(f"error: {msg if msg.startswith(name) else f'{name}: {msg}'}", err=True)
    for r in results:
        for w in r["warnings"]:
            click.echo(f"warning: {r['file']}: {w}", err=True)
    if fmt == "json":
        emit_json(results)  # one object per file, a list even for one file
    else:
        console = stdout_console()
        for name, item in zip(files, parsed, strict=True):
            if isinstance(item, FlashroomError):
                continue
            if verify_only:
                bad = [c for c in item.checks() if not c.ok]
                if bad:
                    for c in bad:
                        console.print(f"{name}: [red]FAIL[/red] {c.name}: {c.detail}")
                else:
                    console.print(f"{name}: [green]ok[/green] ({len(item.checks())} checks)")
            elif hasattr(item, "dfu"):  # a .dfu (flashroom devos)
                from flashroom.cli.devos import render_dfu_text

                render_dfu_text(item, console)
            else:
                _render_module_text(item, console)
    if worst == 2:
        n_bad = sum(1 for p in parsed if isinstance(p, FlashroomError))
        raise ModuleFormatError(f"{n_bad} of {len(files)} file(s) could not be parsed (see above)")
    if worst == 1:
        raise CheckFailed()


_FILES = PathType(dir_okay=False)


@module.command()
@click.argument("files", nargs=-1, required=True, type=_FILES)
@format_option
def inspect(files: tuple[str, ...], fmt: str) -> None:
    """Show what is in modules and whether they are intact.

    Reads prefix (module_info_t), extensions, suffix, CRC-32 and SHA-256 exactly as Particle's
    binary-version-reader does, plus compressed/combined layouts. Exit 0: every file valid;
    1: a file fails a check (CRC, SHA-256, size against addresses, compressed stream, combined
    chain); 2: a file cannot be read or parsed (the message names field and offset), or is not
    a Particle module at all. A DfuSe .dfu file (flashroom devos package) shows each element's
    address and size and the module inside it. The JSON is a list with one object per file.

    \b
    Example:
      flashroom module inspect user-part.bin --format json
    """
    _report(files, fmt, verify_only=False)


@module.command()
@click.argument("files", nargs=-1, required=True, type=_FILES)
@format_option
def verify(files: tuple[str, ...], fmt: str) -> None:
    """Check modules and print only the verdict (same checks and exit codes as inspect).

    \b
    Example:
      flashroom module verify system-part1.bin system-part2.bin user-part.bin
    """
    _report(files, fmt, verify_only=True)


# --- pack ---------------------------------------------------------------------------------------


@module.command()
@click.argument("input_file", required=False, type=_FILES)
@platform_option(required=True)
@click.option(
    "--function",
    "function",
    required=True,
    help="module_function: user, system, bootloader... or its number (user = 5).",
)
@click.option(
    "--index",
    required=True,
    type=click.IntRange(0, 255),
    help="module_index (user part: 1; system parts: 1-3, docs/device-os.md#electron-naming).",
)
@click.option(
    "--version",
    "version",
    required=True,
    type=click.IntRange(0, 0xFFFF),
    help="module_version, 0..65535 (e.g. 6 for a 2.3.1 user app, 2302 for its system parts).",
)
@click.option(
    "--start",
    "start_address",
    type=ADDRESS,
    help="module_start_address, word-aligned, e.g. 0x08080000 (default: the region start).",
)
@click.option(
    "--depends", multiple=True, help="FUNCTION:INDEX:VERSION, e.g. system:2:2302 (up to two)"
)
@click.option(
    "--product-id", type=click.IntRange(0, 0xFFFF), help="Suffix product_id (default 0xffff)."
)
@click.option(
    "--product-version",
    type=click.IntRange(0, 0xFFFF),
    help="Suffix product_version (default 0xffff).",
)
@click.option(
    "--layout",
    type=click.Choice(["stock", "extended"]),
    default="stock",
    show_default=True,
    help="Refuse a module too large for its region under this layout. A user part for extended "
    "depends on the extended system version unless --depends says otherwise.",
)
@click.option(
    "--synthetic",
    "synthetic_size",
    type=SIZE,
    help="Instead of INPUT_FILE: a module of exactly SIZE bytes (e.g. 200K; even) with "
    "deterministic code-like content.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --synthetic.")
@click.option(
    "--vector-table/--no-vector-table",
    default=None,
    help="Force a 0x184-byte vector table in front (default: as Device OS does, "
    "docs/device-os.md#module-info).",
)
@output_option(help="Module file to write (replaced atomically; never left half-written).")
@format_option
def pack(
    input_file: str | None,
    platform: str,
    function: str,
    index: int,
    version: int,
    start_address: int | None,
    depends: tuple[str, ...],
    product_id: int | None,
    product_version: int | None,
    layout: str,
    synthetic_size: int | None,
    seed: int,
    vector_table: bool | None,
    output: str,
    fmt: str,
) -> None:
    """Build a module: module_info, end address, suffix, SHA-256 and CRC-32 computed.

    INPUT_FILE is a raw image or an ELF (its loadable segments are taken). Its bytes go right
    after module_info_t, so code must be linked to run there (0x08080018 for an Electron user
    part). An image that already carries its own module_info_t at the start (a Device OS
    user.ld link) is finished in place instead, as Device OS's post-link step does: SHA-256
    and CRC-32 written over the placeholder tail. Or use --synthetic SIZE for a module of
    exactly SIZE bytes (emulator and demos). A module too large for its region under --layout
    is refused, naming the region. With --layout extended a user part depends by default on
    the extended system version, so stock firmware refuses to run it; a --depends that stock
    firmware meets gets a warning when the module is larger than stock's user part.

    \b
    Example:
      flashroom module pack app.bin --platform electron --function user --index 1 \\
          --version 6 --start 0x08080000 --layout extended -o out.bin
    """

    req = PackRequest(
        platform=platform,
        function=function,
        index=index,
        version=version,
        start_address=start_address,
        depends=depends,
        product_id=product_id,
        product_version=product_version,
        layout=layout,
        synthetic_size=synthetic_size,
        seed=seed,
        vector_table=vector_table,
        input_name=input_file or "<synthetic>",
    )
    check_output_file(output)  # a bad -o fails before the work
    data = _read(input_file, limit=MAX_PACK_INPUT_SIZE) if input_file is not None else None
    result = pack_module(req, data)
    for w in result.warnings:
        warn(w)
    write_bytes_atomic(Path(output), result.module)
    if fmt == "json":
        obj = {"output": output, **result.to_json()}
        emit_json(obj)
    else:
        p = result.placement
        click.echo(
            f"wrote {output}: {len(result.module)} bytes ({result.source}, payload "
            f"{result.payload_size} bytes)\n  in {p.region} [{fmt_addr(p.start)}, "
            f"{fmt_addr(p.end)}) of {p.platform}/{p.layout}, "
            f"{p.end - p.start - len(result.module)} bytes free"
        )


# --- compress / decompress / combine / split -------------------------------------------------


@module.command()
@click.argument("input_file", type=_FILES)
@_output_option
@click.option(
    "--level",
    type=click.IntRange(0, 9),
    default=6,
    show_default=True,
    help="zlib level (Particle's tools use 6).",
)
@click.option(
    "--window-bits",
    type=click.IntRange(0, 15),
    default=0,
    show_default=True,
    help="0 = default (15); else 9..15, stored in the header.",
)
@format_option
def compress(input_file: str, output: str, level: int, window_bits: int, fmt: str) -> None:
    """Compress a module (flag 0x02, 8-byte header, raw Deflate) as Particle's tools do.

    Gen2 devices (Photon, P1, Electron) cannot decompress: the module is written, with a
    warning that its platform cannot apply it.

    \b
    Example:
      flashroom module compress user-part.bin -o user-part.compressed.bin
    """

    check_output_file(output)
    data = _read(input_file)
    _refuse_corrupt(input_file, data, "compress")
    with _about(input_file):
        out = compress_module(data, level=level, window_bits=window_bits)
        for w in compressed_apply_warnings(out):
            warn(w)
    write_bytes_atomic(Path(output), out)
    _emit_written(fmt, output, len(data), len(out), "compressed")


@module.command()
@click.argument("input_file", type=_FILES)
@_output_option
@format_option
def decompress(input_file: str, output: str, fmt: str) -> None:
    """Decompress a compressed module back to the original.

    \b
    Example:
      flashroom module decompress app.compressed.bin -o app.bin
    """

    check_output_file(output)
    data = _read(input_file)
    with _about(input_file):
        out = decompress_module(data)
    write_bytes_atomic(Path(output), out)
    _emit_written(fmt, output, len(data), len(out), "decompressed")


@module.command()
@click.argument("inputs", nargs=-1, required=True, type=_FILES)
@_output_option
@format_option
def combine(inputs: tuple[str, ...], output: str, fmt: str) -> None:
    """Combine modules into one file (flag 0x04 on all but the last), as Particle's tools do.

    Gen2 devices apply only the first module of a combined file: it is written, with a
    warning that its platform cannot apply it.

    \b
    Example:
      flashroom module combine system-part1.bin user-part.bin -o bundle.bin
    """

    check_output_file(output)
    mods = [_read(p) for p in inputs]
    for p, m in zip(inputs, mods, strict=True):
        _refuse_corrupt(p, m, "combine")
    out = combine_modules(mods)
    for w in combined_apply_warnings(mods):
        warn(w)
    write_bytes_atomic(Path(output), out)
    _emit_written(fmt, output, sum(len(m) for m in mods), len(out), f"combined {len(mods)}")


@module.command()
@click.argument("input_file", type=_FILES)
@out_dir_option(help="Folder for part1.bin, part2.bin, ...", required=True)
@format_option
def split(input_file: str, out: Path, fmt: str) -> None:
    """Split a combined file into its modules (COMBINED cleared, checksums recomputed).

    \b
    Example:
      flashroom module split bundle.bin --out parts/
    """

    data = _read(input_file)
    with _about(input_file):
        parts = split_modules(data)
    files = {f"part{i}.bin": p for i, p in enumerate(parts, 1)}
    paths = write_file_set(out, files)
    written = [{"file": str(p), "size": len(d)} for p, d in zip(paths, parts, strict=True)]
    if fmt == "json":
        emit_json({"input": input_file, "out": str(out), "parts": written})
    else:
        for w in written:
            click.echo(f"wrote {w['file']}: {w['size']} bytes")


def _emit_written(fmt: str, output: str, in_size: int, out_size: int, what: str) -> None:
    if fmt == "json":
        emit_json({"output": output, "input_size": in_size, "output_size": out_size})
    else:
        click.echo(f"{what}: wrote {output}: {out_size} bytes (input {in_size} bytes)")


# --- deps ---------------------------------------------------------------------------------------


@module.command()
@click.argument("app", type=_FILES)
@click.option(
    "--against",
    "against",
    multiple=True,
    required=True,
    type=_FILES,
    help="Installed module (repeat, or list several after one --against).",
)
@click.argument("more", nargs=-1, type=_FILES)
@format_option
def deps(app: str, against: tuple[str, ...], more: tuple[str, ...], fmt: str) -> None:
    """Are APP's dependencies met by a set of installed modules? The device's rule.

    Each non-NONE dependency slot needs an installed module of the same function and index
    whose version is at least the required one (docs/device-os.md#dependencies). Exit 1 when
    one is not met, naming it; exit 2 when a module is for another platform than APP.

    \b
    Example:
      flashroom module deps app.bin --against system-part1.bin system-part2.bin
    """

    target = _parse(app)
    names = (*against, *more)
    installed = [_parse(p) for p in names]
    require_same_platform(
        target.info, [(n, m.info) for n, m in zip(names, installed, strict=True)], app
    )
    result = check_dependencies(target.info, [m.info for m in installed])
    if fmt == "json":
        emit_json({"file": app, "against": [m.filename for m in installed], **result.to_json()})
    else:
        from rich.table import Table  # rich: deferred for start-up time

        t = Table()
        for col in ("slot", "needs", "installed", "verdict"):
            t.add_column(col)
        for f in result.findings:
            t.add_row(
                str(f.slot),
                f.reason.split(":")[0],
                "-" if f.installed_version is None else str(f.installed_version),
                "[green]met[/green]" if f.met else "[red]NOT MET[/red]",
            )
        console = stdout_console()
        console.print(f"{app}: dependencies against {len(installed)} installed module(s)")
        console.print(t)
        console.print(result.message)
    if not result.ok:
        raise CheckFailed()


__all__ = ["module"]
