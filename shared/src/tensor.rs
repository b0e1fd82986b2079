//! Conversion between Open Inference Protocol tensor data and tract tensors:
//! element types by their protocol names, JSON data (nested or flat), and the
//! little-endian raw bytes of the binary tensor data extension.

use std::fmt;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use tract_onnx::prelude::{f16, tract_ndarray, DatumType, IntoTensor, Tensor};

use crate::error::{Error, Result};

/// Element type of a tensor, named as in the Open Inference Protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    /// Byte strings. The protocol has them, but no model this service runs
    /// takes them, so requests that use them are rejected.
    Bytes,
}

impl DataType {
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// Parses a protocol name such as `FP32`. Returns `None` for unknown names.
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }

    /// Size of one element in the binary tensor data extension. `None` for
    /// BYTES, whose elements have their own length prefix.
    pub fn element_size(self) -> Option<usize> {
        Some(match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => 8,
            DataType::Bytes => return None,
        })
    }

    pub fn to_datum(self) -> Option<DatumType> {
        Some(match self {
            DataType::Bool => DatumType::Bool,
            DataType::Uint8 => DatumType::U8,
            DataType::Uint16 => DatumType::U16,
            DataType::Uint32 => DatumType::U32,
            DataType::Uint64 => DatumType::U64,
            DataType::Int8 => DatumType::I8,
            DataType::Int16 => DatumType::I16,
            DataType::Int32 => DatumType::I32,
            DataType::Int64 => DatumType::I64,
            DataType::Fp16 => DatumType::F16,
            DataType::Fp32 => DatumType::F32,
            DataType::Fp64 => DatumType::F64,
            DataType::Bytes => return None,
        })
    }

    /// Maps a tract element type to its protocol name. Returns `None` for types
    /// the protocol cannot carry, such as quantized or complex tensors.
    pub fn from_datum(datum: DatumType) -> Option<Self> {
        Some(match datum {
            DatumType::Bool => DataType::Bool,
            DatumType::U8 => DataType::Uint8,
            DatumType::U16 => DataType::Uint16,
            DatumType::U32 => DataType::Uint32,
            DatumType::U64 => DataType::Uint64,
            DatumType::I8 => DataType::Int8,
            DatumType::I16 => DataType::Int16,
            DatumType::I32 => DataType::Int32,
            DatumType::I64 => DataType::Int64,
            DatumType::F16 => DataType::Fp16,
            DatumType::F32 => DataType::Fp32,
            DatumType::F64 => DataType::Fp64,
            DatumType::String => DataType::Bytes,
            _ => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks a requested shape and returns its element count. Rejects negative
/// dimensions, and counts above `max_elements`, before anything is allocated.
pub fn element_count(tensor: &str, shape: &[i64], max_elements: usize) -> Result<usize> {
    let mut count: usize = 1;
    for &dim in shape {
        if dim < 0 {
            return Err(Error::invalid_input(format!(
                "input `{tensor}` has shape {shape:?} with negative dimension {dim}; every dimension must be 0 or more"
            )));
        }
        count = count.checked_mul(dim as usize).filter(|&c| c <= max_elements).ok_or_else(|| {
            Error::TooLarge(format!(
                "input `{tensor}` has shape {shape:?}, more than the limit of {max_elements} elements per request; \
                 split the request or use batch scoring for large inputs"
            ))
        })?;
    }
    Ok(count)
}

/// Typed element storage, filled from JSON or bytes and turned into a tract
/// tensor without a further copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F16(Vec<f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

macro_rules! for_each_values {
    ($values:expr, $vec:ident => $body:expr) => {
        match $values {
            Values::Bool($vec) => $body,
            Values::U8($vec) => $body,
            Values::U16($vec) => $body,
            Values::U32($vec) => $body,
            Values::U64($vec) => $body,
            Values::I8($vec) => $body,
            Values::I16($vec) => $body,
            Values::I32($vec) => $body,
            Values::I64($vec) => $body,
            Values::F16($vec) => $body,
            Values::F32($vec) => $body,
            Values::F64($vec) => $body,
        }
    };
}

/// A JSON scalar as the protocol allows it in `data`.
#[derive(Debug, Clone, Copy)]
enum Scalar {
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(v) => write!(f, "{v}"),
            Scalar::Unsigned(v) => write!(f, "{v}"),
            Scalar::Signed(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v}"),
        }
    }
}

fn integer<T: TryFrom<i128>>(scalar: Scalar) -> Option<T> {
    let wide: i128 = match scalar {
        Scalar::Unsigned(v) => v as i128,
        Scalar::Signed(v) => v as i128,
        // JSON writers print whole floats as `2.0`; accept those but nothing
        // that would lose a fraction.
        Scalar::Float(v) if v.fract() == 0.0 && v.abs() < 1.9e19 => v as i128,
        _ => return None,
    };
    T::try_from(wide).ok()
}

fn float(scalar: Scalar) -> Option<f64> {
    match scalar {
        Scalar::Unsigned(v) => Some(v as f64),
        Scalar::Signed(v) => Some(v as f64),
        Scalar::Float(v) => Some(v),
        Scalar::Bool(_) => None,
    }
}

impl Values {
    pub fn with_capacity(datatype: DataType, capacity: usize) -> Result<Self> {
        Ok(match datatype {
            DataType::Bool => Values::Bool(Vec::with_capacity(capacity)),
            DataType::Uint8 => Values::U8(Vec::with_capacity(capacity)),
            DataType::Uint16 => Values::U16(Vec::with_capacity(capacity)),
            DataType::Uint32 => Values::U32(Vec::with_capacity(capacity)),
            DataType::Uint64 => Values::U64(Vec::with_capacity(capacity)),
            DataType::Int8 => Values::I8(Vec::with_capacity(capacity)),
            DataType::Int16 => Values::I16(Vec::with_capacity(capacity)),
            DataType::Int32 => Values::I32(Vec::with_capacity(capacity)),
            DataType::Int64 => Values::I64(Vec::with_capacity(capacity)),
            DataType::Fp16 => Values::F16(Vec::with_capacity(capacity)),
            DataType::Fp32 => Values::F32(Vec::with_capacity(capacity)),
            DataType::Fp64 => Values::F64(Vec::with_capacity(capacity)),
            DataType::Bytes => {
                return Err(Error::invalid_input("datatype BYTES is not supported: the service runs numeric and BOOL tensors only"))
            }
        })
    }

    pub fn len(&self) -> usize {
        for_each_values!(self, v => v.len())
    }

    pub fn truncate(&mut self, len: usize) {
        for_each_values!(self, v => v.truncate(len))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn datatype(&self) -> DataType {
        match self {
            Values::Bool(_) => DataType::Bool,
            Values::U8(_) => DataType::Uint8,
            Values::U16(_) => DataType::Uint16,
            Values::U32(_) => DataType::Uint32,
            Values::U64(_) => DataType::Uint64,
            Values::I8(_) => DataType::Int8,
            Values::I16(_) => DataType::Int16,
            Values::I32(_) => DataType::Int32,
            Values::I64(_) => DataType::Int64,
            Values::F16(_) => DataType::Fp16,
            Values::F32(_) => DataType::Fp32,
            Values::F64(_) => DataType::Fp64,
        }
    }

    /// Appends one JSON scalar, converted to this element type. Returns `false`
    /// when the value has the wrong kind or is out of the type's range.
    fn push(&mut self, scalar: Scalar) -> bool {
        match self {
            Values::Bool(v) => match scalar {
                Scalar::Bool(b) => v.push(b),
                _ => return false,
            },
            Values::U8(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::U16(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::U32(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::U64(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::I8(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::I16(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::I32(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::I64(v) => return integer(scalar).map(|x| v.push(x)).is_some(),
            Values::F16(v) => match float(scalar) {
                Some(x) if !x.is_finite() || f16::from_f64(x).is_finite() => v.push(f16::from_f64(x)),
                _ => return false,
            },
            Values::F32(v) => match float(scalar) {
                // Only a finite value that overflows FP32 is rejected.
                Some(x) if !x.is_finite() || (x as f32).is_finite() => v.push(x as f32),
                _ => return false,
            },
            Values::F64(v) => match float(scalar) {
                Some(x) => v.push(x),
                None => return false,
            },
        }
        true
    }

    /// Appends the numbers of a JSON value, which may be a number, a boolean or
    /// an array of any nesting. Returns a message naming the first bad element.
    pub fn push_json(&mut self, value: &serde_json::Value) -> std::result::Result<(), String> {
        use serde_json::Value;
        let scalar = match value {
            Value::Array(items) => return items.iter().try_for_each(|item| self.push_json(item)),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Scalar::Unsigned(u),
                (None, Some(i), _) => Scalar::Signed(i),
                (None, None, Some(f)) => Scalar::Float(f),
                _ => return Err(format!("{n} is not a number this service can read")),
            },
            other => return Err(format!("{other} is not a number")),
        };
        if self.push(scalar) {
            Ok(())
        } else {
            Err(format!("{scalar} is not a valid {} value", self.datatype()))
        }
    }

    /// Appends one number, converted to this element type. Returns `false`
    /// when it does not fit the type.
    pub fn push_f64(&mut self, value: f64) -> bool {
        self.push(Scalar::Float(value))
    }

    /// Parses JSON `data` into values of `datatype` for a tensor of `shape`.
    /// The data is either flat (one array of every element, row-major) or
    /// nested exactly as the shape is. Stops at the first element past the
    /// shape's count, so an oversized array is never held.
    pub fn from_json(tensor: &str, datatype: DataType, shape: &[usize], json: &str) -> Result<Self> {
        let expected = shape.iter().product();
        let mut values = Values::with_capacity(datatype, expected)?;
        let mut walk = DataWalk { values: &mut values, expected, shape, layout: None, path: Vec::new() };
        let mut deserializer = serde_json::Deserializer::from_str(json);
        DataSeed { walk: &mut walk, depth: 0 }
            .deserialize(&mut deserializer)
            .and_then(|()| deserializer.end())
            .map_err(|err| Error::invalid_input(format!("invalid data for input `{tensor}`: {err}")))?;
        if values.len() != expected {
            return Err(Error::invalid_input(format!(
                "input `{tensor}` has {} data elements but its shape {shape:?} needs {expected}",
                values.len()
            )));
        }
        Ok(values)
    }

    /// Reads the little-endian bytes of the binary tensor data extension.
    pub fn from_le_bytes(tensor: &str, datatype: DataType, expected: usize, bytes: &[u8]) -> Result<Self> {
        let size = datatype
            .element_size()
            .ok_or_else(|| Error::invalid_input(format!("input `{tensor}`: datatype BYTES is not supported")))?;
        if bytes.len() != expected * size {
            return Err(Error::invalid_input(format!(
                "input `{tensor}` has {} bytes of binary data but its shape and datatype {datatype} need {}",
                bytes.len(),
                expected * size
            )));
        }
        macro_rules! decode {
            ($variant:ident, $t:ty) => {
                Values::$variant(bytes.chunks_exact(size).map(|c| <$t>::from_le_bytes(c.try_into().unwrap())).collect())
            };
        }
        Ok(match datatype {
            DataType::Bool => {
                // Any byte other than 0 or 1 is not a valid Rust bool.
                if let Some(position) = bytes.iter().position(|&b| b > 1) {
                    return Err(Error::invalid_input(format!(
                        "input `{tensor}`: BOOL element {position} has byte value {}; use 0 or 1",
                        bytes[position]
                    )));
                }
                Values::Bool(bytes.iter().map(|&b| b == 1).collect())
            }
            DataType::Uint8 => Values::U8(bytes.to_vec()),
            DataType::Int8 => Values::I8(bytes.iter().map(|&b| b as i8).collect()),
            DataType::Uint16 => decode!(U16, u16),
            DataType::Uint32 => decode!(U32, u32),
            DataType::Uint64 => decode!(U64, u64),
            DataType::Int16 => decode!(I16, i16),
            DataType::Int32 => decode!(I32, i32),
            DataType::Int64 => decode!(I64, i64),
            DataType::Fp16 => decode!(F16, f16),
            DataType::Fp32 => decode!(F32, f32),
            DataType::Fp64 => decode!(F64, f64),
            DataType::Bytes => unreachable!("BYTES has no element size and returned above"),
        })
    }

    /// Builds a tract tensor of `shape`, which must hold exactly `len()` elements.
    pub fn into_tensor(self, shape: &[usize]) -> Result<Tensor> {
        fn build<T: tract_onnx::prelude::Datum>(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
            tract_ndarray::ArrayD::from_shape_vec(shape, data)
                .map(IntoTensor::into_tensor)
                .map_err(|err| Error::invalid_input(format!("data does not fit shape {shape:?}: {err}")))
        }
        for_each_values!(self, v => build(shape, v))
    }
}

/// Streams a JSON array of any nesting depth into [`Values`].
/// Whether JSON data lists every element in one array or nests arrays as
/// the shape does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Flat,
    Nested,
}

/// State shared by every level of one JSON data walk.
struct DataWalk<'a> {
    values: &'a mut Values,
    expected: usize,
    shape: &'a [usize],
    /// Set by the first element, so every later one must follow it.
    layout: Option<Layout>,
    /// Index of the array being read at each level, for error messages.
    path: Vec<usize>,
}

impl DataWalk<'_> {
    fn place(&self) -> String {
        let indices: String = self.path.iter().map(|i| format!("[{i}]")).collect();
        if indices.is_empty() { "the top-level array".to_string() } else { format!("data{indices}") }
    }

    fn layout_hint(&self) -> String {
        format!(
            "send one flat array of {} values, or arrays nested to match shape {:?}",
            self.expected, self.shape
        )
    }
}

/// One value of the walk, `depth` arrays deep.
struct DataSeed<'w, 'a> {
    walk: &'w mut DataWalk<'a>,
    depth: usize,
}

/// Nesting deeper than any tensor rank the service accepts is rejected before
/// the parser's own recursion limit is reached.
const MAX_DEPTH: usize = 32;

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl DataSeed<'_, '_> {
    fn push<E: de::Error>(self, scalar: Scalar) -> std::result::Result<(), E> {
        let walk = self.walk;
        let rank = walk.shape.len();
        // A scalar one array deep is flat data, and one as deep as the rank
        // is nested data. With rank 1 the two are the same.
        let layout = if self.depth == rank {
            Layout::Nested
        } else if self.depth == 1 {
            Layout::Flat
        } else {
            return Err(E::custom(format!("{} is a number where an array is expected; {}", walk.place(), walk.layout_hint())));
        };
        match walk.layout {
            None => walk.layout = Some(layout),
            Some(first) if first != layout && rank != 1 => {
                return Err(E::custom(format!("{} mixes numbers and arrays; {}", walk.place(), walk.layout_hint())));
            }
            Some(_) => {}
        }
        let position = walk.values.len();
        if position >= walk.expected {
            return Err(E::custom(format!("more data elements than the {} that the shape needs", walk.expected)));
        }
        if walk.values.push(scalar) {
            Ok(())
        } else {
            Err(E::custom(format!(
                "element {position} is {scalar}, which is not a valid {} value",
                walk.values.datatype()
            )))
        }
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of {} values, flat or nested", self.walk.values.datatype())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<(), E> {
        self.push(Scalar::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.push(Scalar::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.push(Scalar::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<(), E> {
        self.push(Scalar::Float(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let walk = self.walk;
        let depth = self.depth;
        if depth >= MAX_DEPTH {
            return Err(de::Error::custom(format!("arrays are nested more than {MAX_DEPTH} deep")));
        }
        let rank = walk.shape.len();
        let nested_too_deep = depth >= rank && depth > 0;
        let flat_but_nested = depth >= 1 && walk.layout == Some(Layout::Flat) && rank != 1;
        if nested_too_deep || flat_but_nested {
            return Err(de::Error::custom(format!("{} is an array where a number is expected; {}", walk.place(), walk.layout_hint())));
        }
        walk.path.push(0);
        let mut length = 0;
        while seq.next_element_seed(DataSeed { walk: &mut *walk, depth: depth + 1 })?.is_some() {
            length += 1;
            if let Some(index) = walk.path.last_mut() {
                *index = length;
            }
        }
        walk.path.pop();
        // Flat data is counted as a whole once the walk ends; a nested array
        // must be as long as its dimension.
        let nested = walk.layout != Some(Layout::Flat) || rank == 1;
        if nested && depth < rank && length != walk.shape[depth] {
            return Err(de::Error::custom(format!(
                "{} has {length} elements but dimension {depth} of shape {:?} is {}; {}",
                walk.place(),
                walk.shape,
                walk.shape[depth],
                walk.layout_hint()
            )));
        }
        Ok(())
    }
}

/// Serializes a tract tensor's elements as a flat, row-major JSON array.
#[derive(Debug)]
pub struct JsonData<'a>(pub &'a Tensor);

impl Serialize for JsonData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let view = self.0.try_as_plain_ram().map_err(S::Error::custom)?;
        macro_rules! slice {
            ($t:ty) => {
                view.as_slice::<$t>().map_err(S::Error::custom)?
            };
        }
        match self.0.datum_type() {
            DatumType::Bool => serializer.collect_seq(slice!(bool)),
            DatumType::U8 => serializer.collect_seq(slice!(u8)),
            DatumType::U16 => serializer.collect_seq(slice!(u16)),
            DatumType::U32 => serializer.collect_seq(slice!(u32)),
            DatumType::U64 => serializer.collect_seq(slice!(u64)),
            DatumType::I8 => serializer.collect_seq(slice!(i8)),
            DatumType::I16 => serializer.collect_seq(slice!(i16)),
            DatumType::I32 => serializer.collect_seq(slice!(i32)),
            DatumType::I64 => serializer.collect_seq(slice!(i64)),
            DatumType::F16 => serializer.collect_seq(slice!(f16).iter().map(|x| x.to_f32())),
            DatumType::F32 => serializer.collect_seq(slice!(f32)),
            DatumType::F64 => serializer.collect_seq(slice!(f64)),
            DatumType::String => serializer.collect_seq(slice!(String)),
            other => Err(S::Error::custom(format!("output type {other:?} cannot be sent as JSON"))),
        }
    }
}

/// Returns a tensor's elements as the binary tensor data extension sends
/// them: little-endian values, or for strings (BYTES) each element as a
/// 4-byte little-endian length followed by its bytes.
pub fn le_bytes(tensor: &Tensor) -> Result<std::borrow::Cow<'_, [u8]>> {
    let unsupported = || Error::Inference {
        model: String::new(),
        reason: format!("output type {:?} cannot be sent as binary data", tensor.datum_type()),
    };
    match DataType::from_datum(tensor.datum_type()) {
        None => Err(unsupported()),
        Some(DataType::Bytes) => {
            let view = tensor.try_as_plain_ram().map_err(|_| unsupported())?;
            let strings = view.as_slice::<String>().map_err(|_| unsupported())?;
            let mut bytes = Vec::with_capacity(strings.iter().map(|s| s.len() + 4).sum());
            for text in strings {
                bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
                bytes.extend_from_slice(text.as_bytes());
            }
            Ok(std::borrow::Cow::Owned(bytes))
        }
        // Every target this service builds for (x86_64, aarch64) is little-endian.
        Some(_) => Ok(std::borrow::Cow::Borrowed(tensor.as_bytes())),
    }
}

/// Reads a numeric tensor as `f64` values, for the named-feature responses.
/// FP32 and FP16 values keep their shortest decimal form, so 0.1f32 reads as
/// 0.1 and not as 0.10000000149011612.
pub fn to_f64(tensor: &Tensor) -> Result<Vec<f64>> {
    let view = tensor.try_as_plain_ram().map_err(|err| Error::invalid_input(err.to_string()))?;
    let shortest = |text: String| text.parse::<f64>().unwrap_or(f64::NAN);
    match tensor.datum_type() {
        DatumType::F32 => {
            let values = view.as_slice::<f32>().map_err(|err| Error::invalid_input(err.to_string()))?;
            return Ok(values.iter().map(|v| if v.is_finite() { shortest(v.to_string()) } else { *v as f64 }).collect());
        }
        DatumType::F16 => {
            let values = view.as_slice::<f16>().map_err(|err| Error::invalid_input(err.to_string()))?;
            return Ok(values.iter().map(|v| if v.is_finite() { shortest(v.to_string()) } else { v.to_f64() }).collect());
        }
        _ => {}
    }
    let cast = tensor
        .cast_to::<f64>()
        .map_err(|err| Error::invalid_input(format!("output of type {:?} is not numeric: {err}", tensor.datum_type())))?;
    let view = cast.try_as_plain_ram().map_err(|err| Error::invalid_input(err.to_string()))?;
    Ok(view.as_slice::<f64>().map_err(|err| Error::invalid_input(err.to_string()))?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_json_give_same_values() {
        let flat = Values::from_json("x", DataType::Fp32, &[2, 2], "[1, 2.5, -3, 4]").unwrap();
        let nested = Values::from_json("x", DataType::Fp32, &[2, 2], "[[1, 2.5], [-3, 4]]").unwrap();
        assert_eq!(flat, nested);
        assert_eq!(flat, Values::F32(vec![1.0, 2.5, -3.0, 4.0]));
    }

    #[test]
    fn json_count_mismatch_names_tensor() {
        let err = Values::from_json("descriptors", DataType::Fp32, &[1, 6], "[1, 2]").unwrap_err();
        assert_eq!(err.to_string(), "input `descriptors` has 2 data elements but its shape [1, 6] needs 6");
        let err = Values::from_json("descriptors", DataType::Fp32, &[1, 1], "[1, 2]").unwrap_err();
        assert!(err.to_string().contains("more data elements than the 1"), "{err}");
    }

    #[test]
    fn out_of_range_integers_are_rejected() {
        let err = Values::from_json("x", DataType::Uint8, &[2], "[1, 300]").unwrap_err();
        assert!(err.to_string().contains("element 1 is 300, which is not a valid UINT8 value"), "{err}");
        assert!(Values::from_json("x", DataType::Int64, &[1], "[1.5]").is_err());
        assert_eq!(Values::from_json("x", DataType::Int64, &[1], "[2.0]").unwrap(), Values::I64(vec![2]));
        assert!(Values::from_json("x", DataType::Fp32, &[1], "[1e39]").is_err());
    }

    #[test]
    fn bool_and_number_do_not_mix() {
        assert!(Values::from_json("x", DataType::Bool, &[1], "[1]").is_err());
        assert!(Values::from_json("x", DataType::Fp32, &[1], "[true]").is_err());
        assert_eq!(Values::from_json("x", DataType::Bool, &[2], "[true, false]").unwrap(), Values::Bool(vec![true, false]));
    }

    #[test]
    fn ragged_nesting_is_rejected() {
        let err = Values::from_json("d", DataType::Fp32, &[2, 3], "[[1, 2, 3, 4], [5, 6]]").unwrap_err();
        assert!(err.to_string().contains("data[0] has 4 elements but dimension 1 of shape [2, 3] is 3"), "{err}");
        let err = Values::from_json("d", DataType::Fp32, &[1, 6], "[[[1, 2, 3]], [[4, 5, 6]]]").unwrap_err();
        assert!(err.to_string().contains("where a number is expected"), "{err}");
        let err = Values::from_json("d", DataType::Fp32, &[2, 2], "[1, 2, [3, 4]]").unwrap_err();
        assert!(err.to_string().contains("where a number is expected"), "{err}");
        let err = Values::from_json("d", DataType::Fp32, &[2, 2], "[[1, 2], 3, 4]").unwrap_err();
        assert!(err.to_string().contains("mixes numbers and arrays"), "{err}");
        let err = Values::from_json("d", DataType::Fp32, &[3, 2], "[[1, 2], [3, 4]]").unwrap_err();
        assert!(err.to_string().contains("has 2 elements but dimension 0 of shape [3, 2] is 3"), "{err}");
    }

    #[test]
    fn higher_rank_nesting_is_read_in_order() {
        let nested = Values::from_json("d", DataType::Int64, &[2, 1, 2], "[[[1, 2]], [[3, 4]]]").unwrap();
        assert_eq!(nested, Values::I64(vec![1, 2, 3, 4]));
        let flat = Values::from_json("d", DataType::Int64, &[2, 1, 2], "[1, 2, 3, 4]").unwrap();
        assert_eq!(flat, nested);
        assert_eq!(Values::from_json("d", DataType::Int64, &[0, 6], "[]").unwrap(), Values::I64(vec![]));
    }

    #[test]
    fn strings_in_data_are_rejected() {
        assert!(Values::from_json("x", DataType::Fp32, &[1], r#"["1.0"]"#).is_err());
    }

    #[test]
    fn negative_or_huge_shapes_are_rejected_before_allocation() {
        assert!(element_count("x", &[-1, 6], 100).unwrap_err().to_string().contains("negative dimension -1"));
        let err = element_count("x", &[1 << 40, 1 << 40], 1_000_000).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
        assert_eq!(element_count("x", &[], 10).unwrap(), 1);
        assert_eq!(element_count("x", &[0, 6], 10).unwrap(), 0);
    }

    #[test]
    fn binary_data_round_trips() {
        let bytes: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let values = Values::from_le_bytes("x", DataType::Fp32, 2, &bytes).unwrap();
        let tensor = values.into_tensor(&[1, 2]).unwrap();
        assert_eq!(&le_bytes(&tensor).unwrap()[..], &bytes[..]);
        assert!(Values::from_le_bytes("x", DataType::Fp32, 3, &bytes).is_err());
        assert!(Values::from_le_bytes("x", DataType::Bool, 1, &[2]).is_err());
    }

    #[test]
    fn json_output_is_flat() {
        let tensor = Values::I32(vec![1, 2, 3, 4]).into_tensor(&[2, 2]).unwrap();
        assert_eq!(serde_json::to_string(&JsonData(&tensor)).unwrap(), "[1,2,3,4]");
    }

    #[test]
    fn string_outputs_encode_as_bytes() {
        let tensor = tract_ndarray::Array1::from_vec(vec!["ab".to_string(), String::new()]).into_tensor();
        assert_eq!(serde_json::to_string(&JsonData(&tensor)).unwrap(), r#"["ab",""]"#);
        assert_eq!(&le_bytes(&tensor).unwrap()[..], &[2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0][..]);
    }

    #[test]
    fn float32_reads_in_shortest_form() {
        let tensor = Values::F32(vec![0.1, -0.9373952]).into_tensor(&[2]).unwrap();
        assert_eq!(to_f64(&tensor).unwrap(), vec![0.1, -0.9373952]);
    }

    #[test]
    fn datatype_names_round_trip() {
        for name in ["BOOL", "UINT8", "INT64", "FP16", "FP32", "FP64"] {
            assert_eq!(DataType::parse(name).unwrap().name(), name);
        }
        assert_eq!(DataType::parse("FLOAT"), None);
    }
}
