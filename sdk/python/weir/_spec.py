"""Field types and the declarations a plugin's decorator makes."""

import json

__all__ = ["FIELD_TYPES", "FieldSpec", "parse_fields", "DeclarationError", "FieldError"]

# The types of the contract's `field-type` enum, in its order.
FIELD_TYPES = ("text", "int", "float", "boolean", "json")

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


class DeclarationError(ValueError):
    """A decorator's declaration that cannot be used (raised at import)."""


class FieldError(TypeError):
    """A field read or written against its declaration."""


class FieldSpec:
    """One declared field: its name, type and whether it may be null."""

    __slots__ = ("name", "type", "nullable")

    def __init__(self, name, type, nullable):
        self.name = name
        self.type = type
        self.nullable = nullable

    def __repr__(self):
        return f"FieldSpec({self.name!r}, {self.type!r}, nullable={self.nullable})"

    def __eq__(self, other):
        return isinstance(other, FieldSpec) and (self.name, self.type, self.nullable) == (
            other.name,
            other.type,
            other.nullable,
        )

    __hash__ = None

    @property
    def declared(self):
        """The type as written in the decorator: `text?`."""
        return self.type + ("?" if self.nullable else "")


def parse_fields(what, fields):
    """`{"ip": "text?"}` as field specs, in order; errors name the field."""
    if fields is None:
        return []
    if not isinstance(fields, dict):
        raise DeclarationError(
            f"{what}= takes a dict of field name to type, such as "
            f'{{"user_agent": "text?"}}, not {type(fields).__name__}'
        )
    specs = []
    for name, declared in fields.items():
        if not isinstance(name, str) or not name:
            raise DeclarationError(f"{what}=: a field name must be a non-empty string, not {name!r}")
        if not isinstance(declared, str):
            raise DeclarationError(
                f"{what}=: field `{name}`: the type is a string such as \"text\" or \"int?\", "
                f"not {declared!r}"
            )
        base = declared.strip()
        nullable = base.endswith("?")
        if nullable:
            base = base[:-1].rstrip()
        if base not in FIELD_TYPES:
            raise DeclarationError(
                f"{what}=: field `{name}`: unknown type `{declared}` "
                f"(known: {', '.join(FIELD_TYPES)}; add `?` for a nullable one)"
            )
        specs.append(FieldSpec(name, base, nullable))
    return specs


# Reading: a decoded JSON value as a declared type, or None when it is another
# type (as the Rust SDK's getters give `None`).


def _read_text(v):
    return v if v.__class__ is str else None


def _read_int(v):
    if v.__class__ is int and _I64_MIN <= v <= _I64_MAX:
        return v
    return None


def _read_float(v):
    c = v.__class__
    if c is float:
        return v
    if c is int:
        try:
            return float(v)
        except OverflowError:
            return None
    return None


def _read_boolean(v):
    return v if v.__class__ is bool else None


def _read_json(v):
    return v


READERS = {
    "text": _read_text,
    "int": _read_int,
    "float": _read_float,
    "boolean": _read_boolean,
    "json": _read_json,
}

# Writing: a value as the JSON text of a declared type, in ASCII (so that the
# additions buffer's character offsets are its byte offsets). Each raises
# FieldError naming the field.

_escape = json.encoder.encode_basestring_ascii
_json_encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))
_json_check = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _describe(value):
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _no_lone_surrogates(spec, text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError(
            f"field `{spec.name}`: the text holds a lone surrogate, which is not valid UTF-8"
        ) from None


def _write_text(spec, v):
    if isinstance(v, str):
        if not v.isascii():
            _no_lone_surrogates(spec, v)
        return _escape(v)
    raise FieldError(f"field `{spec.name}` is {spec.declared}: cannot be set to {_describe(v)}")


def _write_int(spec, v):
    if isinstance(v, int) and not isinstance(v, bool):
        if _I64_MIN <= v <= _I64_MAX:
            return int.__repr__(v)
        raise FieldError(f"field `{spec.name}` is int: {v} is out of the 64-bit range")
    raise FieldError(f"field `{spec.name}` is {spec.declared}: cannot be set to {_describe(v)}")


def _write_float(spec, v):
    if isinstance(v, (float, int)) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:
            f = float("inf")
        if f - f == 0.0:
            return float.__repr__(f)
        raise FieldError(f"field `{spec.name}` is float: {v!r} is not a finite number")
    raise FieldError(f"field `{spec.name}` is {spec.declared}: cannot be set to {_describe(v)}")


def _write_boolean(spec, v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    raise FieldError(f"field `{spec.name}` is {spec.declared}: cannot be set to {_describe(v)}")


def _write_json(spec, v):
    try:
        text = _json_encoder.encode(v)
    except (TypeError, ValueError) as e:
        raise FieldError(f"field `{spec.name}` is json: {e}") from None
    if "\\ud" in text:
        # Escaped surrogates: valid only in pairs, which UTF-8 can say.
        try:
            _json_check.encode(v).encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError(
                f"field `{spec.name}`: the value holds a lone surrogate, which is not valid UTF-8"
            ) from None
    return text


_WRITERS = {
    "text": _write_text,
    "int": _write_int,
    "float": _write_float,
    "boolean": _write_boolean,
    "json": _write_json,
}


def writer(spec):
    """The function that writes one member `"name":value` of field `spec`."""
    prefix = _escape(spec.name) + ":"
    write = _WRITERS[spec.type]
    null = prefix + "null"
    if spec.nullable:

        def member(value):
            if value is None:
                return null
            return prefix + write(spec, value)

    else:

        def member(value):
            if value is None:
                raise FieldError(
                    f"field `{spec.name}` is {spec.type}, not nullable: cannot be set to None "
                    f'(declare it "{spec.type}?" to allow null)'
                )
            return prefix + write(spec, value)

    return member
