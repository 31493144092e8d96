"""`iotbench list`: every plugin in one line, every transport option with its type, default and range,
all read from the declarations (the options structures, the registries); and the library versions
run.json records come from the plugins too."""

from __future__ import annotations

import dataclasses

import pytest
from support import need_server

from iotbench.cli import main
from iotbench.codecs import CODECS
from iotbench.compression import COMPRESSIONS, get_compression
from iotbench.machine import library_versions, plugin_libraries
from iotbench.transports import TRANSPORTS
from iotbench.transports.base import TransportError
from iotbench.transports.options import TransportOptions, shown


@pytest.fixture(scope="module")
def listed() -> list[str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["list"]) == 0
    return out.getvalue().splitlines()


def _section(lines: list[str], title: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start + 1 : end]


def _plugin_line(section: list[str], name: str) -> str:
    [line] = [line for line in section if line.startswith(f"  {name} ")]
    return line


@pytest.mark.parametrize(("title", "registry"), [("codecs", CODECS), ("compressions", COMPRESSIONS)])
def test_one_line_per_codec_and_compression_saying_what_it_is(listed, title, registry):
    section = _section(listed, title)
    assert len(section) == len(registry.names())
    for name in registry.names():
        line = _plugin_line(section, name)
        usable, why = registry.status(name)
        assert (registry.load(name).label if usable else why) in line


@pytest.mark.parametrize("name", TRANSPORTS.names())
def test_every_transport_option_is_listed_with_its_type_default_and_range(listed, name):
    section = _section(listed, "transports")
    usable, why = TRANSPORTS.status(name)
    if not usable:
        assert why in _plugin_line(section, name)
        return
    transport = TRANSPORTS.load(name)
    assert transport.label in _plugin_line(section, name)
    start = section.index(_plugin_line(section, name))
    options = section[start + 1 : start + 1 + len(transport.Options.names())]
    for declared, line in zip(transport.Options.declared(), options, strict=True):
        assert line.split()[:2] == [declared.name, declared.kind.split()[0]], line
        assert f" {shown(declared.default)} " in line and declared.allowed() in line, line
        assert declared.option.help and declared.option.help in line, f"{name}.{declared.name} says what it is for"


@pytest.mark.parametrize("name", TRANSPORTS.names())
def test_each_transport_is_built_from_its_one_frozen_options_structure(name):
    usable, why = TRANSPORTS.status(name)
    if not usable:
        need_server(why)  # a missing library: a skip on a laptop, a failure with CI=true
    cls = TRANSPORTS.load(name)
    assert issubclass(cls.Options, TransportOptions) and cls.Options.__dataclass_params__.frozen
    transport = cls()
    assert transport.options == cls.Options()  # the defaults are the structure's, declared once
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(transport.options, cls.Options.names()[0], None)
    for variant in cls.CONTRACT_VARIANTS:
        assert cls(**variant).options == cls.Options(**variant)


def test_a_bad_value_names_the_transport_option_value_and_what_is_allowed():
    mqtt = TRANSPORTS.load("mqtt")
    with pytest.raises(TransportError, match=r"^mqtt qos=2 is not known; use one of 0, 1$"):
        mqtt.Options(qos=2)
    with pytest.raises(TransportError, match=r"^mqtt connect_timeout_s=nan must be a number from 0.1 to 120 s$"):
        mqtt(connect_timeout_s=float("nan"))
    with pytest.raises(TransportError, match=r"^mqtt tls=1 is not a boolean; use true or false$"):
        mqtt(tls=1)
    kafka = TRANSPORTS.load("kafka")
    with pytest.raises(TransportError, match=r"^kafka partitions=True must be a whole number from 1 to 1024 "):
        kafka(partitions=True)
    assert kafka(fetch_max_wait_ms="auto").options.fetch_max_wait_ms == "auto"
    with pytest.raises(TransportError, match=r"^kafka topic='' must be non-empty text$"):
        kafka(topic="")


def test_compression_goes_through_the_registry_and_keeps_its_old_errors():
    assert COMPRESSIONS.names() == ["gzip", "lz4", "none", "zstd"]
    assert get_compression("gzip") is COMPRESSIONS.load("gzip")
    with pytest.raises(LookupError, match="unknown compression 'zstdd'; did you mean 'zstd'"):
        get_compression("zstdd")


def test_run_json_libraries_come_from_the_plugins():
    declared = plugin_libraries()
    for name in TRANSPORTS.names():
        if TRANSPORTS.status(name)[0]:
            assert set(TRANSPORTS.load(name).libraries) <= set(declared), name
    if TRANSPORTS.status("http")[0]:  # what machine.LIBRARIES missed
        assert {"h2", "httptools", "granian"} <= set(declared)
    assert "httpx" not in declared  # nothing imports it
    versions = library_versions(codecs=["json"], transports=["inprocess"], compressions=["none"])
    assert {"iotbench", "msgspec", "isal"} <= set(versions) and "paho-mqtt" not in versions
