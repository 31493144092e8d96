"""``iotbench codecs``: the size/time table, the evolution table and the overhead table."""

from __future__ import annotations

import json

from iotbench.cli import main


def rows(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_codec_table_rows_carry_sizes_and_times(capsys):
    assert main(["codecs", "json", "msgpack-array", "--json"]) == 0
    table = {r["codec"]: r for r in rows(capsys)}
    assert set(table) == {"json", "msgpack-array"}
    for row in table.values():
        assert row["library"].startswith("msgspec ")
        assert (
            row["bytes_single"] > 0 and row["bytes_per_event_batch"] > 0 and row["compressed_bytes_per_event_batch"] > 0
        )
        assert row["encode_us"] > 0 and row["decode_batch_us"] > 0
    # field names are a large part of a self-describing event
    assert table["msgpack-array"]["bytes_single"] < table["json"]["bytes_single"] / 2


def test_evolution_table_from_the_command_line(capsys):
    assert main(["codecs", "--evolution", "protobuf", "--json"]) == 0
    outcomes = {(r["direction"], r["framing"]): r["outcome"] for r in rows(capsys)}
    assert outcomes[("v1 reads v2", "single")] == "invented"
    assert outcomes[("v2 reads v1", "batch")] == "ok"


def test_table_renders_for_people(capsys):
    assert main(["codecs", "--evolution", "json"]) == 0
    out = capsys.readouterr().out
    assert "Schema evolution" in out and "missing required field" in out


def test_unknown_codec_or_compression_is_one_line_and_exit_2(capsys):
    assert main(["codecs", "jsn"]) == 2
    assert "did you mean 'json'" in capsys.readouterr().err
    assert main(["codecs", "json", "--compression", "brotli"]) == 2
    assert "unknown compression 'brotli'" in capsys.readouterr().err
