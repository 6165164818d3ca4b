"""Reading a Bulk Prompts CSV as a stream: UTF-8 (a BOM is fine), a column headed `prompts` (any other columns,
such as the `id` most spreadsheets add, are ignored and named back to the uploader).

The file is parsed by Python's csv module under RFC 4180's rules, through
`io.TextIOWrapper(..., encoding="utf-8-sig", newline="")`: records end at "\\r\\n", "\\n" or "\\r" outside
quotes and nowhere else (a form feed or U+2028 is part of the prompt), wherever the file's reads happen
to cut. The file is never read whole and no line is held whole past the longest a valid prompt can take,
so a 500 MB upload costs a few megabytes of memory. Every refusal says what is wrong and where (line
number, offending header, byte offset of the first bad byte).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 500 * 1024 * 1024
# The longest prompt, in characters (after CSV unquoting). It is the csv module's default field_size_limit:
# that limit is process-wide, so this module never changes it, and checks this constant itself as well.
MAX_PROMPT_CHARS = 131_072
CHUNK = 1024 * 1024  # bytes per read from disk
HEADER = "prompts"
BOM = codecs.BOM_UTF8
# A valid line takes at most a BOM, a quote, MAX_PROMPT_CHARS characters of at most 4 bytes each (a quote
# is written '""': 2 bytes), a quote and "\r\n": about 4 * MAX_PROMPT_CHARS bytes. A line past twice that is
# refused as soon as it is read, instead of gathering a whole 500 MB "line" in memory first.
_MAX_LINE_BYTES = 8 * MAX_PROMPT_CHARS


class CsvProblem(ValueError):
    """The file cannot be used; the message is meant for the person who uploaded it."""


@dataclass(frozen=True)
class PromptRow:
    line: int  # the line the prompt starts on (1 = the header)
    prompt: str


class _TooLong(Exception):
    """A line or field past MAX_PROMPT_CHARS; prompts_read knows which line the prompt started on."""


def _line_ends(data: bytes) -> int:
    """How many lines end in `data`, as csv counts them: "\\r\\n", "\\n" and a lone "\\r" each end one."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _bad_byte(path: Path) -> CsvProblem:
    """The first NUL byte or byte that is not UTF-8, with its exact byte offset and line.

    Only called once decoding has failed (or a NUL turned up), so the usual path decodes once; this reads
    the file again from the start, which makes the position exact wherever reads and decoding cut it.
    """
    pending = b""  # the start of a character cut by the end of the previous read
    offset = 0  # where `pending` starts in the file
    line = 1
    cr = False  # the bytes before `pending` ended with "\r"
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            data = pending + chunk
            try:
                used = codecs.utf_8_decode(data, "strict", False)[1]
                invalid = -1
            except UnicodeDecodeError as exc:
                used = invalid = exc.start
            nul = data.find(b"\0", 0, used)
            bad = nul if nul != -1 else invalid
            end = bad if bad != -1 else used
            line += _line_ends(data[:end]) - (cr and data.startswith(b"\n"))
            if nul != -1:
                return CsvProblem(
                    f"the file contains a NUL byte at byte offset {offset + nul} (line {line}); prompts cannot "
                    "contain NUL - remove it (a file full of them is probably UTF-16: save it as CSV UTF-8)"
                )
            if invalid != -1:
                return CsvProblem(
                    f"the file is not UTF-8: byte 0x{data[invalid]:02X} at byte offset {offset + invalid} "
                    f"(counting from 0), line {line}, cannot be decoded; save the file as CSV UTF-8"
                )
            cr = data[:used].endswith(b"\r") or (cr and not used)
            offset += used
            pending = data[used:]
    if pending:
        return CsvProblem(
            f"the file is not UTF-8: it ends inside a character at offset {offset + len(pending)} (line {line})"
        )
    return CsvProblem("the file is not UTF-8; save the file as CSV UTF-8")  # it changed while being read


class _Checked(io.BufferedIOBase):
    """The file's bytes as TextIOWrapper reads them, stopped at a NUL byte or a line too long to be valid.

    Both checks run on bytes, a read at a time, so the text layer above never holds more than one line
    of at most _MAX_LINE_BYTES and costs nothing per line.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._file = io.BufferedReader(io.FileIO(path), buffer_size=CHUNK)  # closed by close()
        self._open_line = 0  # bytes read since the last "\n" or "\r"

    @property
    def name(self) -> str:
        return str(self._path)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        return self._check(self._file.read(size))

    def read1(self, size: int = -1, /) -> bytes:
        return self._check(self._file.read1(size))

    def close(self) -> None:
        self._file.close()
        super().close()

    def _check(self, data: bytes) -> bytes:
        if b"\0" in data:
            raise _bad_byte(self._path)
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        self._open_line = self._open_line + len(data) if last == -1 else len(data) - 1 - last
        if self._open_line > _MAX_LINE_BYTES:
            raise _TooLong
        return data


def _column_name(name: str, index: int) -> str:
    return repr(name) if name.strip() else f"an unnamed column (column {index + 1})"


def prompts_read(path: Path, *, max_bytes: int = MAX_BYTES, ignored: list[str] | None = None) -> Iterator[PromptRow]:
    """Yield each prompt (the `prompts` column of each row) with its line number; raise CsvProblem at the first
    thing wrong. Once the header is read, `ignored` (if given) holds how the other columns are named, for the
    message that says they were left out ('id', or "an unnamed column (column 3)")."""
    size = path.stat().st_size
    if size > max_bytes:
        raise CsvProblem(f"the file is {size / 1024 / 1024:.1f} MB; the limit is {max_bytes // 1024 // 1024} MB")
    if size == 0 or (size == len(BOM) and path.read_bytes() == BOM):
        raise CsvProblem("the file is empty: it needs a header line 'prompts' and one prompt per line")
    text = io.TextIOWrapper(_Checked(path), encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(text, strict=True)
    start_line = 1  # the line the record being read starts on
    try:
        header = next(reader, None)
        if header is None:
            raise CsvProblem("the file is empty: it needs a header line 'prompts' and one prompt per line")
        names = [h.strip() for h in header]
        matches = [n for n, name in enumerate(names) if name.casefold() == HEADER]
        if not matches:
            found = ", ".join(repr(h) for h in header) or "nothing"
            raise CsvProblem(f"line 1: the header needs a column named 'prompts'; found {found}")
        if len(matches) > 1:
            where = " and ".join(str(n + 1) for n in matches)
            raise CsvProblem(f"line 1: columns {where} are both named 'prompts'; keep one of them")
        column, width = matches[0], len(header)
        if ignored is not None:
            ignored.extend(_column_name(name, n) for n, name in enumerate(header) if n != column)
        rows = 0
        start_line = reader.line_num + 1
        for fields in reader:
            if fields and len(fields) != width:
                raise CsvProblem(
                    f"line {start_line}: {len(fields)} column{'s' if len(fields) != 1 else ''} where the header "
                    f"has {width} - quote a prompt that contains commas"
                )
            prompt = fields[column] if fields else ""
            if not prompt or prompt.isspace():
                raise CsvProblem(f"line {start_line}: blank prompt; remove the line or write a prompt")
            if len(prompt) > MAX_PROMPT_CHARS:
                raise _TooLong
            rows += 1
            yield PromptRow(line=start_line, prompt=prompt)
            start_line = reader.line_num + 1
        if rows == 0:
            raise CsvProblem("the file has the header 'prompts' but no prompts")
    except UnicodeDecodeError:
        raise _bad_byte(path) from None
    except _TooLong:
        raise CsvProblem(_too_long(start_line)) from None
    except csv.Error as exc:
        if str(exc).startswith("field larger than field limit"):
            raise CsvProblem(_too_long(start_line)) from None
        raise CsvProblem(f"line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        text.close()  # also when the caller stops early: closing this generator runs it


def _too_long(line: int) -> str:
    return (
        f"line {line}: the prompt is longer than {MAX_PROMPT_CHARS} characters, the limit for one prompt; "
        "shorten it or split it into several prompts"
    )
