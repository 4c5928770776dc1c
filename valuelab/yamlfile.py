"""YAML data files read so that errors can point at a line: mappings remember where they start, duplicate
keys are refused, and bad YAML becomes an InputError naming the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from valuelab.errors import InputError


class YamlMap(dict):
    """A YAML mapping that remembers its 1-based line, so errors can point at it."""

    line: int | None = None


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that records mapping lines and rejects duplicate keys."""


def _construct_map(loader: _Loader, node: yaml.MappingNode):
    data = YamlMap()
    data.line = node.start_mark.line + 1
    yield data
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    data.update(loader.construct_mapping(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def read_text(path: Path, what: str = "file") -> str:
    """The UTF-8 text at `path`; an unreadable or undecodable file is an InputError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", file=str(path)) from None
    except OSError as err:
        raise InputError(f"cannot read the {what} ({err.strerror})", file=str(path)) from None


def read_yaml(path: Path) -> Any:
    """The YAML document at `path`; every mapping is a `YamlMap` carrying its line; errors name file and line."""
    loader = _Loader(read_text(path))
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise InputError(f"invalid YAML: {err.problem}", file=str(path),
                         line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
