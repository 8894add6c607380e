//! A serde `Deserializer` over one pymemcache value (bytes, str or int).

use std::fmt;

use serde::de::value::{SeqDeserializer, StrDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};

/// What the flags say the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Python `bytes` (flags 0): any bytes.
    Bytes,
    /// Python `str` (flag 16): UTF-8.
    Text,
    /// Python `int` (flag 2 or 4): decimal ASCII.
    Int,
}

/// The deserializer's error: a message.
#[derive(Debug)]
pub(super) struct PyDeError(String);

impl fmt::Display for PyDeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PyDeError {}

impl de::Error for PyDeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PyDeError(msg.to_string())
    }
}

/// Deserializes one value of the given [`Kind`] from its (decompressed) bytes.
pub(super) struct PyDeserializer<'a> {
    kind: Kind,
    data: &'a [u8],
}

impl<'a> PyDeserializer<'a> {
    pub(super) fn new(kind: Kind, data: &'a [u8]) -> Self {
        PyDeserializer { kind, data }
    }

    fn text(&self) -> Result<&'a str, PyDeError> {
        std::str::from_utf8(self.data).map_err(|e| {
            let what = match self.kind {
                Kind::Text => "str value",
                Kind::Bytes | Kind::Int => "value",
            };
            PyDeError(format!("{what} is not valid UTF-8: {e}"))
        })
    }

    fn visit_integer<'de, V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value, PyDeError> {
        let text = std::str::from_utf8(self.data)
            .map_err(|_| PyDeError("expected a decimal integer, found non-UTF-8 bytes".into()))?
            .trim_matches(|c: char| c.is_ascii_whitespace());
        if let Ok(n) = text.parse::<i64>() {
            return visitor.visit_i64(n);
        }
        if let Ok(n) = text.parse::<u64>() {
            return visitor.visit_u64(n);
        }
        if let Ok(n) = text.parse::<i128>() {
            return visitor.visit_i128(n);
        }
        if let Ok(n) = text.parse::<u128>() {
            return visitor.visit_u128(n);
        }
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Err(PyDeError(format!(
                "integer {text} is out of the range of 128-bit integers"
            )))
        } else {
            Err(PyDeError(format!(
                "expected a decimal integer, found {text:?}"
            )))
        }
    }

    fn visit_byte_seq<'de, V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value, PyDeError> {
        let mut seq = SeqDeserializer::<_, PyDeError>::new(self.data.iter().copied());
        let value = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(value)
    }
}

macro_rules! integer_methods {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
            match self.kind {
                Kind::Int | Kind::Bytes => self.visit_integer(visitor),
                Kind::Text => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for PyDeserializer<'_> {
    type Error = PyDeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        match self.kind {
            Kind::Bytes => visitor.visit_bytes(self.data),
            Kind::Text => visitor.visit_str(self.text()?),
            Kind::Int => self.visit_integer(visitor),
        }
    }

    integer_methods!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        match self.kind {
            Kind::Text | Kind::Bytes => visitor.visit_str(self.text()?),
            Kind::Int => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        match self.kind {
            Kind::Bytes | Kind::Text => visitor.visit_bytes(self.data),
            Kind::Int => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        match self.kind {
            Kind::Bytes | Kind::Text => self.visit_byte_seq(visitor),
            Kind::Int => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PyDeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PyDeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PyDeError> {
        match self.kind {
            Kind::Text | Kind::Bytes => {
                let variant: StrDeserializer<'_, PyDeError> = self.text()?.into_deserializer();
                visitor.visit_enum(variant)
            }
            Kind::Int => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PyDeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 unit unit_struct tuple_struct map struct identifier
    }
}
