"""A codec's library calls and its error conversion as one call: ``chain(...)``.

A plugin keeps the contract (decode raises only ``CodecError``) by catching what the
library raises. In Python that catch is one frame -- 20-35 ns, up to a quarter of a
140-220 ns msgspec decode (docs/codecs.md, "Plugin overhead"). ``chain`` builds the
same function as a C object (``_chain.c``, compiled by ``pip install``) when it is
available and as generated Python otherwise; both behave alike (tests/test_codec_chain.py).

>>> import msgspec                                                   # doctest: +SKIP
>>> decode = chain([msgspec.json.Decoder(Reading).decode],
...                refused=msgspec.DecodeError, refuse=lambda e: CodecError(str(e)))
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

__all__ = ["COMPILED", "chain", "python_chain"]

try:
    from iotbench.codecs._chain import Chain as _CChain
except ImportError:  # built without a C compiler: the Python twin below does the same job, slower
    _CChain = None

COMPILED = _CChain is not None
"""Whether ``chain`` returns the C implementation (CI requires it: tests/test_codec_chain.py)."""

Refused = type[BaseException] | tuple[type[BaseException], ...]


def chain(steps: Sequence[Callable[..., Any]], *, last_keywords: Sequence[str] | None = None,
          refused: Refused | None = None,
          refuse: Callable[[BaseException], BaseException] | None = None) -> Callable[[Any], Any]:
    """``x -> steps[-1](... steps[0](x))``; a ``refused`` exception becomes ``refuse(exc)``, raised "from None".

    ``last_keywords``: the last step gets the previous result, a tuple of as many items
    (``msgspec.structs.astuple``), as these keyword arguments -- ``model(a=t[0], b=t[1], ...)``.
    """
    if _CChain is not None:
        # a builtin function bound to the Chain: CPython 3.11 calls those ~15 ns faster than an
        # object with a vectorcall slot (measured on msgspec's JSON decode, docs/codecs.md)
        return _CChain(steps, last_keywords=last_keywords, refused=refused, refuse=refuse).as_function()  # type: ignore[no-any-return]
    return python_chain(steps, last_keywords=last_keywords, refused=refused, refuse=refuse)


def python_chain(steps: Sequence[Callable[..., Any]], *, last_keywords: Sequence[str] | None = None,
                 refused: Refused | None = None,
                 refuse: Callable[[BaseException], BaseException] | None = None) -> Callable[[Any], Any]:
    """The pure-Python twin of the C ``Chain`` (same checks, same results, same errors)."""
    steps = tuple(steps)
    keywords = None if last_keywords is None else tuple(last_keywords)
    if keywords is not None and not all(type(k) is str for k in keywords):
        raise TypeError("last_keywords must be strings")
    if not steps:
        raise ValueError("a Chain needs at least one step")
    if len(steps) > 8:
        raise ValueError("a Chain takes at most 8 steps")
    for i, step in enumerate(steps):
        if not callable(step):
            raise TypeError(f"step {i} is not callable")
    if (refused is None) != (refuse is None):
        raise TypeError("give refused and refuse together, or neither")
    if refuse is not None and not callable(refuse):
        raise TypeError("refuse must be callable")
    names = [f"step{i}" for i in range(len(steps))]
    call = "value"
    for i, name in enumerate(names):
        if keywords is not None and i == len(names) - 1:
            call = f"{name}(**_keywords({call}))"
        else:
            call = f"{name}({call})"
    body = f"    return {call}\n"
    if refused is not None:
        body = (f"    try:\n    {body}    except refused as exc:\n"
                "        raise _replacement(refuse(exc)) from None\n")
    names_of = keywords or ()

    def _keywords(value: Any) -> dict[str, Any]:
        if not isinstance(value, tuple) or len(value) != len(names_of):
            raise TypeError(f"the step before the last must return a tuple of {len(names_of)} items, "
                            f"not {type(value).__name__}")
        return dict(zip(names_of, value))

    scope: dict[str, Any] = dict(zip(names, steps), refused=refused, refuse=refuse,
                                 _keywords=_keywords, _replacement=_replacement)
    exec(f"def chained(value):\n{body}", scope)
    function: Callable[[Any], Any] = scope["chained"]
    return function


def _replacement(exc: Any) -> BaseException:
    if not isinstance(exc, BaseException):
        raise TypeError(f"refuse() must return an exception instance, not {type(exc).__name__}")
    return exc
