"""Bulk Prompts CSV: streamed, UTF-8, a `prompts` column (others ignored and named); each bad file gets a message
saying where."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import pytest

from playground.bulk.csvfile import CsvProblem, prompts_read


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "prompts.csv"
    path.write_bytes(data)
    return path


def test_reads_prompts_with_quoted_commas_and_newlines_and_a_bom(tmp_path):
    data = '\ufeffprompts\nHello\n"One, two"\n"multi\nline"\r\nlast'.encode()
    rows = list(prompts_read(write(tmp_path, data)))
    assert [r.prompt for r in rows] == ["Hello", "One, two", "multi\nline", "last"]
    assert [r.line for r in rows] == [2, 3, 4, 6]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\xef\xbb\xbf", "the file is empty"),
        (b"prompts\n", "but no prompts"),
        (b"prompt\nhi\n", "line 1: the header needs a column named 'prompts'; found 'prompt'"),
        (b"id,text\n1,hi\n", "line 1: the header needs a column named 'prompts'; found 'id', 'text'"),
        (b"prompts,id,Prompts\nhi,1,x\n", "line 1: columns 1 and 3 are both named 'prompts'; keep one of them"),
        (
            b"prompts\nfine\nhi,there\n",
            "line 3: 2 columns where the header has 1 - quote a prompt that contains commas",
        ),
        (b"id,prompts\n1,fine\n2\n", "line 3: 1 column where the header has 2"),
        (b"id,prompts\n1,fine\n2,\n", "line 3: blank prompt"),
        (b"prompts\nfine\n\nmore\n", "line 3: blank prompt"),
        (b'prompts\nfine\n"  "\n', "line 3: blank prompt"),
        (b"prompts\ncaf\xe9\n", "byte 0xE9 at byte offset 11 (counting from 0), line 2"),
        (b'prompts\n"unterminated\n', "not valid CSV"),
    ],
)
def test_bad_files_are_refused_with_what_and_where(tmp_path, data, message):
    with pytest.raises(CsvProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(prompts_read(write(tmp_path, data)))


def test_other_columns_are_ignored_and_named(tmp_path):
    data = b'id,Prompts ,notes,\n1,Hello,greeting,\n2,"One, two",,\n'
    ignored: list[str] = []
    rows = list(prompts_read(write(tmp_path, data), ignored=ignored))
    assert [(r.line, r.prompt) for r in rows] == [(2, "Hello"), (3, "One, two")]
    assert ignored == ["'id'", "'notes'", "an unnamed column (column 4)"]


def test_a_file_of_one_prompts_column_ignores_nothing(tmp_path):
    ignored: list[str] = []
    assert [r.prompt for r in prompts_read(write(tmp_path, b"prompts\nHi\n"), ignored=ignored)] == ["Hi"]
    assert ignored == []


def test_oversize_file_is_refused_before_reading(tmp_path):
    path = write(tmp_path, b"prompts\n" + b"x\n" * 1000)
    with pytest.raises(CsvProblem, match="the limit is 0 MB"):
        list(prompts_read(path, max_bytes=100))


def test_a_large_file_streams_in_little_memory(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as out:
        out.write(b"prompts\n")
        line = b'"Summarise, in one sentence, the plot of a novel about a lighthouse keeper."\n'
        for _ in range(300_000):  # ~23 MB
            out.write(line)
    tracemalloc.start()
    count = sum(1 for _ in prompts_read(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 300_000
    assert peak < 8 * 1024 * 1024  # a few chunks, never the file


BOUNDARY = 1024 * 1024  # the old reader cut the file into 1 MiB chunks; every read size since divides it
LIMIT = 131_072  # csvfile.MAX_PROMPT_CHARS, Python csv's default field_size_limit


def test_a_windows_file_with_crlf_across_a_read_boundary_is_read_whole(tmp_path):
    data = bytearray(b"prompts\r\n")
    prompts = []
    while len(data) < BOUNDARY - 100:
        prompts.append(f"prompt number {len(prompts)}")
        data += prompts[-1].encode() + b"\r\n"
    prompts.append("x" * (BOUNDARY - 1 - len(data)))
    data += prompts[-1].encode() + b"\r\n"
    assert data[BOUNDARY - 1 : BOUNDARY + 1] == b"\r\n"  # the boundary falls between \r and \n
    for tail in ("after the boundary", '"two\r\nlines"', "last"):
        prompts.append(tail.strip('"'))
        data += tail.encode() + b"\r\n"
    rows = list(prompts_read(write(tmp_path, bytes(data))))
    assert [r.prompt for r in rows] == prompts
    lines = list(range(2, len(prompts) + 1))
    assert [r.line for r in rows] == [*lines, lines[-1] + 2]  # the quoted prompt takes two lines


def test_only_cr_and_lf_end_a_record_so_other_line_breaks_stay_inside_a_prompt(tmp_path):
    prompts = [
        "Page one\fpage two",
        "Vertical\vtab",
        "File\x1cgroup\x1drecord\x1eseparators",
        "Next\x85line",
        "Line\u2028separator",
        "Paragraph\u2029separator",
    ]
    rows = list(prompts_read(write(tmp_path, ("prompts\r\n" + "\r\n".join(prompts) + "\r\n").encode())))
    assert [(r.line, r.prompt) for r in rows] == list(enumerate(prompts, start=2))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"prompts\nfine\nbad\x00byte\n", "NUL byte at byte offset 16 (line 3)"),
        (b'prompts\r\n"multi\rline\x00"\r\n', "NUL byte at byte offset 20 (line 3)"),
        (b"prompts\nok\x00\xff\n", "NUL byte at byte offset 10 (line 2)"),  # the first problem wins
        ("prompts\nhi\n".encode("utf-16-le"), "NUL byte at byte offset 1 (line 1)"),
    ],
)
def test_a_nul_byte_is_refused_with_its_offset_and_line(tmp_path, data, message):
    with pytest.raises(CsvProblem, match=r"^the file contains a " + message.replace("(", r"\(").replace(")", r"\)")):
        list(prompts_read(write(tmp_path, data)))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"\xe9", "the file is not UTF-8: byte 0xE9 at byte offset {offset} (counting from 0), line {line},"),
        (b"\x00", "the file contains a NUL byte at byte offset {offset} (line {line});"),
    ],
    ids=["not-utf-8", "nul"],
)
def test_a_bad_byte_far_into_the_file_is_placed_exactly(tmp_path, bad, message):
    data = bytearray(b"prompts\n")
    while len(data) < BOUNDARY - 100:
        data += "café\r\n".encode()
    data += b"x" * (BOUNDARY - 1 - len(data)) + "é".encode()  # its two bytes straddle the boundary
    data += b"\r\nok\rcaf" + bad + b"\n"
    offset = len(data) - 2
    before = data[:offset]
    line = 1 + before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n")  # "ok" ends with a lone \r
    with pytest.raises(CsvProblem, match=re.escape(message.format(offset=offset, line=line))):
        list(prompts_read(write(tmp_path, bytes(data))))


def test_a_prompt_as_long_as_the_limit_is_read(tmp_path):
    prompts = ["x" * LIMIT, '"' * LIMIT, "\U0001f600" * LIMIT]
    data = "prompts\n" + "".join('"' + p.replace('"', '""') + '"\n' for p in prompts)
    assert [r.prompt for r in prompts_read(write(tmp_path, data.encode()))] == prompts


@pytest.mark.parametrize(
    "prompt",
    [
        b"x" * (LIMIT + 1),
        b'"' + b"y" * 999 + (b"\n" + b"y" * 999) * 140 + b'"',  # over the limit on its 132nd line
        b"z" * (20 * 1024 * 1024),  # one 20 MB line
    ],
    ids=["one-line", "multi-line", "20-MB-line"],
)
def test_a_prompt_over_the_limit_is_refused_with_its_line_and_the_limit(tmp_path, prompt):
    path = write(tmp_path, b"prompts\nshort\n" + prompt + b"\nmore\n")
    tracemalloc.start()
    with pytest.raises(CsvProblem) as refused:
        list(prompts_read(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert str(refused.value) == (
        "line 3: the prompt is longer than 131072 characters, the limit for one prompt; "
        "shorten it or split it into several prompts"
    )
    assert peak < 8 * 1024 * 1024  # a line too long is refused as it is read, not gathered first


def test_a_file_cut_inside_a_character_is_refused(tmp_path):
    with pytest.raises(CsvProblem, match=re.escape("it ends inside a character at offset 12 (line 2)")):
        list(prompts_read(write(tmp_path, b"prompts\ncaf\xc3")))
