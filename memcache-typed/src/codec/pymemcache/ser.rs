//! A serde `Serializer` that produces one pymemcache value (bytes, str or int)
//! and its flags, before compression.

use std::fmt;

use serde::ser::{self, Impossible, Serialize};

use super::{FLAG_INTEGER, FLAG_TEXT};
use crate::error::EncodeError;

/// The serializer's error.
#[derive(Debug)]
pub(super) enum PySerError {
    /// The value has a shape pymemcache would pickle.
    Unsupported(String),
    /// A `Serialize` impl failed.
    Custom(String),
}

impl PySerError {
    fn unsupported(what: &str) -> Self {
        PySerError::Unsupported(format!(
            "{what}: only str, bytes and integers are shared with pymemcache (it would pickle this)"
        ))
    }

    pub(super) fn into_encode_error(self, codec: &'static str) -> EncodeError {
        match self {
            PySerError::Unsupported(message) => EncodeError::Unsupported { codec, message },
            PySerError::Custom(message) => EncodeError::Serialize { codec, message },
        }
    }
}

impl fmt::Display for PySerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PySerError::Unsupported(message) | PySerError::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for PySerError {}

impl ser::Error for PySerError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PySerError::Custom(msg.to_string())
    }
}

/// The value's bytes and flags (before compression).
type Output = (Vec<u8>, u32);

/// Serializes a str (flag 16), bytes (flag 0) or integer (flag 2).
pub(super) struct PySerializer;

fn text(s: &str) -> Output {
    (s.as_bytes().to_vec(), FLAG_TEXT)
}

fn integer(n: impl fmt::Display) -> Output {
    (n.to_string().into_bytes(), FLAG_INTEGER)
}

macro_rules! integer_methods {
    ($($method:ident($t:ty))*) => {$(
        fn $method(self, v: $t) -> Result<Output, PySerError> {
            Ok(integer(v))
        }
    )*};
}

impl ser::Serializer for PySerializer {
    type Ok = Output;
    type Error = PySerError;
    type SerializeSeq = ByteSeq;
    type SerializeTuple = ByteSeq;
    type SerializeTupleStruct = Impossible<Output, PySerError>;
    type SerializeTupleVariant = Impossible<Output, PySerError>;
    type SerializeMap = Impossible<Output, PySerError>;
    type SerializeStruct = Impossible<Output, PySerError>;
    type SerializeStructVariant = Impossible<Output, PySerError>;

    integer_methods!(
        serialize_i8(i8) serialize_i16(i16) serialize_i32(i32) serialize_i64(i64) serialize_i128(i128)
        serialize_u8(u8) serialize_u16(u16) serialize_u32(u32) serialize_u64(u64) serialize_u128(u128)
    );

    fn serialize_bool(self, _v: bool) -> Result<Output, PySerError> {
        Err(PySerError::unsupported("bool"))
    }

    fn serialize_f32(self, _v: f32) -> Result<Output, PySerError> {
        Err(PySerError::unsupported("floating-point number"))
    }

    fn serialize_f64(self, _v: f64) -> Result<Output, PySerError> {
        Err(PySerError::unsupported("floating-point number"))
    }

    fn serialize_char(self, v: char) -> Result<Output, PySerError> {
        Ok(text(v.encode_utf8(&mut [0; 4])))
    }

    fn serialize_str(self, v: &str) -> Result<Output, PySerError> {
        Ok(text(v))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Output, PySerError> {
        Ok((v.to_vec(), 0))
    }

    fn serialize_none(self) -> Result<Output, PySerError> {
        Err(PySerError::unsupported("None"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Output, PySerError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Output, PySerError> {
        Err(PySerError::unsupported("unit"))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<Output, PySerError> {
        Err(PySerError::unsupported(&format!("unit struct {name}")))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<Output, PySerError> {
        Ok(text(variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Output, PySerError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<Output, PySerError> {
        Err(PySerError::unsupported(&format!(
            "enum variant {name}::{variant} with data"
        )))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<ByteSeq, PySerError> {
        Ok(ByteSeq(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, len: usize) -> Result<ByteSeq, PySerError> {
        Ok(ByteSeq(Vec::with_capacity(len)))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, PySerError> {
        Err(PySerError::unsupported(&format!("tuple struct {name}")))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, PySerError> {
        Err(PySerError::unsupported(&format!(
            "enum variant {name}::{variant} with data"
        )))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, PySerError> {
        Err(PySerError::unsupported("map"))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, PySerError> {
        Err(PySerError::unsupported(&format!("struct {name}")))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, PySerError> {
        Err(PySerError::unsupported(&format!(
            "enum variant {name}::{variant} with data"
        )))
    }
}

/// Collects a sequence of `u8` (a `Vec<u8>` or `[u8; N]`) as Python `bytes`.
pub(super) struct ByteSeq(Vec<u8>);

impl ByteSeq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PySerError> {
        self.0.push(value.serialize(ByteSerializer)?);
        Ok(())
    }
}

impl ser::SerializeSeq for ByteSeq {
    type Ok = Output;
    type Error = PySerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PySerError> {
        self.push(value)
    }

    fn end(self) -> Result<Output, PySerError> {
        Ok((self.0, 0))
    }
}

impl ser::SerializeTuple for ByteSeq {
    type Ok = Output;
    type Error = PySerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PySerError> {
        self.push(value)
    }

    fn end(self) -> Result<Output, PySerError> {
        Ok((self.0, 0))
    }
}

/// Accepts exactly one `u8`: an element of a byte sequence.
struct ByteSerializer;

fn not_a_byte() -> PySerError {
    PySerError::unsupported(
        "sequence whose elements are not u8 (only byte sequences are Python bytes)",
    )
}

macro_rules! reject_scalars {
    ($($method:ident($t:ty))*) => {$(
        fn $method(self, _v: $t) -> Result<u8, PySerError> {
            Err(not_a_byte())
        }
    )*};
}

impl ser::Serializer for ByteSerializer {
    type Ok = u8;
    type Error = PySerError;
    type SerializeSeq = Impossible<u8, PySerError>;
    type SerializeTuple = Impossible<u8, PySerError>;
    type SerializeTupleStruct = Impossible<u8, PySerError>;
    type SerializeTupleVariant = Impossible<u8, PySerError>;
    type SerializeMap = Impossible<u8, PySerError>;
    type SerializeStruct = Impossible<u8, PySerError>;
    type SerializeStructVariant = Impossible<u8, PySerError>;

    fn serialize_u8(self, v: u8) -> Result<u8, PySerError> {
        Ok(v)
    }

    reject_scalars!(
        serialize_bool(bool) serialize_i8(i8) serialize_i16(i16) serialize_i32(i32)
        serialize_i64(i64) serialize_i128(i128) serialize_u16(u16) serialize_u32(u32)
        serialize_u64(u64) serialize_u128(u128) serialize_f32(f32) serialize_f64(f64)
        serialize_char(char) serialize_str(&str) serialize_bytes(&[u8])
        serialize_unit_struct(&'static str)
    );

    fn serialize_none(self) -> Result<u8, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<u8, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_unit(self) -> Result<u8, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<u8, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<u8, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, PySerError> {
        Err(not_a_byte())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, PySerError> {
        Err(not_a_byte())
    }
}
