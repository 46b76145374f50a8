"""A step's `config` from the TOML, as the plugin declared it."""

__all__ = ["Config", "ConfigError", "parse_defaults", "build_config"]

from ._spec import DeclarationError


class ConfigError(ValueError):
    """A configuration value that cannot be used, naming its key."""

    def __init__(self, key, message):
        super().__init__(f"config `{key}`: {message}")
        self.key = key
        self.message = message


_TRUE = {"true": True, "false": False}


def _parse_bool(text):
    value = _TRUE.get(text.strip())
    if value is None:
        raise ValueError("expected `true` or `false`")
    return value


def _parse_int(text):
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("expected an integer") from None


def _parse_float(text):
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError("expected a number") from None


def _parse_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


_PARSERS = {bool: _parse_bool, int: _parse_int, float: _parse_float, str: str, list: _parse_list}


def parse_defaults(config):
    """The decorator's `config=`: key -> default. A string default keeps the
    step's value a string; a bool, int, float or list default makes `init`
    parse the step's value into that type."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise DeclarationError(
            "config= takes a dict of the known keys and their defaults, such as "
            f'{{"threshold": "10"}}, not {type(config).__name__}'
        )
    out = {}
    for key, default in config.items():
        if not isinstance(key, str) or not key:
            raise DeclarationError(f"config=: a key must be a non-empty string, not {key!r}")
        if key.startswith("file."):
            raise DeclarationError(
                f"config=: `{key}`: granted files are not declared (read them with config.file(NAME))"
            )
        if default is not None and type(default) not in _PARSERS:
            raise DeclarationError(
                f"config=: `{key}`: a default is a str, bool, int, float, list or None, "
                f"not {type(default).__name__}"
            )
        if isinstance(default, list):
            default = [str(item) for item in default]
        out[key] = default
    return out


class Config:
    """The step's configuration: each declared key's value (the step's, else
    the default) and the granted files.

    `config["key"]` or `config.key` is the value: a string, or the default's
    type when the declared default is a bool, int, float or list (None when
    the default is None and the step sets nothing). `config.bool("key")`,
    `.int`, `.float` and `.list` parse a string value once and remember it.
    """

    __slots__ = ("_values", "_files", "_parsed")

    def __init__(self, values, files):
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_files", files)
        object.__setattr__(self, "_parsed", {})

    def __getitem__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(self._unknown(key)) from None

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(self._unknown(key)) from None

    def __setattr__(self, key, value):
        raise AttributeError("the configuration is read-only")

    def __contains__(self, key):
        return key in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def keys(self):
        return self._values.keys()

    def items(self):
        return self._values.items()

    def get(self, key, default=None):
        return self._values.get(key, default)

    def __repr__(self):
        return f"Config({self._values!r})"

    def _unknown(self, key):
        known = ", ".join(self._values) or "none"
        return f"config `{key}` is not declared in the decorator's config= (known: {known})"

    def _typed(self, key, kind, parse):
        memo = (key, kind)
        parsed = self._parsed
        if memo in parsed:
            return parsed[memo]
        if key not in self._values:
            raise ConfigError(key, self._unknown(key).split(": ", 1)[-1])
        value = self._values[key]
        if value is None:
            raise ConfigError(key, "required but not set in the step's `config`")
        if isinstance(value, str):
            try:
                value = parse(value)
            except ValueError as e:
                raise ConfigError(key, f"{e} (got `{self._values[key]}`)") from None
        parsed[memo] = value
        return value

    def text(self, key):
        """The value of `key` as a string (an error if it has no value)."""
        return self._typed(key, "text", str)

    def bool(self, key):
        """`true` or `false`."""
        return self._typed(key, "bool", _parse_bool)

    def int(self, key):
        return self._typed(key, "int", _parse_int)

    def float(self, key):
        return self._typed(key, "float", _parse_float)

    def list(self, key):
        """A comma-separated list: `"click, save"` is `["click", "save"]`."""
        return self._typed(key, "list", _parse_list)

    def file(self, name):
        """Where granted file `name` can be read (`files = [".../NAME"]` in the step)."""
        try:
            return self._files[name]
        except KeyError:
            raise ConfigError(
                f"file.{name}", f"file `{name}` is not granted: add it to the step's `files`"
            ) from None


def build_config(defaults, pairs):
    """The step's pairs checked against the declared keys: an unknown key is
    an error naming it and the known ones; a value whose default is typed is
    parsed into that type."""
    given = {}
    files = {}
    for key, value in pairs:
        if key.startswith("file."):
            files[key[5:]] = value
        else:
            given[key] = value  # the last one wins, as in the Rust SDK
    for key in given:
        if key not in defaults:
            if defaults:
                raise ConfigError(key, f"unknown key (known: {', '.join(defaults)})")
            raise ConfigError(key, "unknown key: the plugin takes no configuration")
    values = {}
    for key, default in defaults.items():
        if key not in given:
            values[key] = default
            continue
        text = given[key]
        kind = type(default)
        if default is None or kind is str:
            values[key] = text
            continue
        try:
            values[key] = _PARSERS[kind](text)
        except ValueError as e:
            raise ConfigError(key, f"{e} (got `{text}`)") from None
    return Config(values, files)
