"""Reading a Bulk Prompts CSV as a stream: UTF-8 (a BOM is fine), one column headed `prompts`.

The file is never read whole: bytes are decoded incrementally and parsed row by row, so a 500 MB
upload costs a few megabytes of memory. Every refusal says what is wrong and where (line number,
offending header, byte offset of the first bad byte).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 500 * 1024 * 1024
CHUNK = 1024 * 1024
HEADER = "prompts"
BOM = codecs.BOM_UTF8


class CsvProblem(ValueError):
    """The file cannot be used; the message is meant for the person who uploaded it."""


@dataclass(frozen=True)
class PromptRow:
    line: int  # the line the prompt starts on (1 = the header)
    prompt: str


def _lines(path: Path) -> Iterator[str]:
    """Decoded lines (newlines kept), read in chunks; a byte that is not UTF-8 stops with its offset."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0  # bytes consumed before the current chunk
    line = 1
    carry = ""
    with open(path, "rb") as handle:
        first = True
        while chunk := handle.read(CHUNK):
            start = 0
            if first and chunk.startswith(BOM):
                start = len(BOM)
            first = False
            try:
                text = decoder.decode(chunk[start:])
            except UnicodeDecodeError as exc:
                bad = offset + start + exc.start
                line += (carry + chunk[start : start + exc.start].decode("utf-8", "replace")).count("\n")
                raise CsvProblem(
                    f"the file is not UTF-8: byte 0x{chunk[start + exc.start]:02X} at byte offset {bad} "
                    f"(counting from 0), line {line}, cannot be decoded; save the file as CSV UTF-8"
                ) from None
            offset += len(chunk)
            pieces = (carry + text).splitlines(keepends=True)
            carry = pieces.pop() if pieces and not pieces[-1].endswith(("\n", "\r")) else ""
            for piece in pieces:
                line += 1
                yield piece
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise CsvProblem(
                f"the file is not UTF-8: it ends inside a character at offset {offset} (line {line})"
            ) from None
        if carry + tail:
            yield carry + tail


def prompts_read(path: Path, *, max_bytes: int = MAX_BYTES) -> Iterator[PromptRow]:
    """Yield each prompt with its line number; raise CsvProblem at the first thing wrong."""
    size = path.stat().st_size
    if size > max_bytes:
        raise CsvProblem(f"the file is {size / 1024 / 1024:.1f} MB; the limit is {max_bytes // 1024 // 1024} MB")
    if size == 0 or (size == len(BOM) and path.read_bytes() == BOM):
        raise CsvProblem("the file is empty: it needs a header line 'prompts' and one prompt per line")
    reader = csv.reader(_lines(path), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvProblem("the file is empty: it needs a header line 'prompts' and one prompt per line")
        if [h.strip() for h in header] != [HEADER]:
            found = ", ".join(repr(h) for h in header) or "nothing"
            raise CsvProblem(f"line 1: the header must be one column named 'prompts'; found {found}")
        rows = 0
        start_line = reader.line_num + 1
        for fields in reader:
            if len(fields) > 1:
                raise CsvProblem(
                    f"line {start_line}: {len(fields)} columns; the file must have exactly one column (prompts) "
                    "- quote a prompt that contains commas"
                )
            if not fields or not fields[0].strip():
                raise CsvProblem(f"line {start_line}: blank prompt; remove the line or write a prompt")
            rows += 1
            yield PromptRow(line=start_line, prompt=fields[0])
            start_line = reader.line_num + 1
        if rows == 0:
            raise CsvProblem("the file has the header 'prompts' but no prompts")
    except csv.Error as exc:
        raise CsvProblem(f"line {reader.line_num}: not valid CSV ({exc})") from None
