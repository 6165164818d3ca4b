"""Bulk Prompts CSV: streamed, UTF-8, one `prompts` column; each bad file gets a message saying where."""

from __future__ import annotations

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
        (b"prompt\nhi\n", "line 1: the header must be one column named 'prompts'; found 'prompt'"),
        (b"prompts,extra\nhi,there\n", "found 'prompts', 'extra'"),
        (b"prompts\nfine\nhi,there\n", "line 3: 2 columns"),
        (b"prompts\nfine\n\nmore\n", "line 3: blank prompt"),
        (b'prompts\nfine\n"  "\n', "line 3: blank prompt"),
        (b"prompts\ncaf\xe9\n", "byte 0xE9 at byte offset 11 (counting from 0), line 2"),
        (b'prompts\n"unterminated\n', "not valid CSV"),
    ],
)
def test_bad_files_are_refused_with_what_and_where(tmp_path, data, message):
    with pytest.raises(CsvProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(prompts_read(write(tmp_path, data)))


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
