//! Chakra's protobuf messages (MLCommons execution-trace schema 0.0.4), as prost types.
//!
//! Written here from the published schema's field numbers and types (they are the wire
//! interface); only the messages and fields an execution trace file holds. A file is a sequence
//! of varint-length-delimited records: one [`GlobalMetadata`], then [`Node`]s.

use prost::{Message, Oneof};

/// The first record of a file.
#[derive(Clone, PartialEq, Message)]
pub struct GlobalMetadata {
    /// Schema version, e.g. "0.0.4".
    #[prost(string, tag = "1")]
    pub version: String,
    /// Free-form attributes.
    #[prost(message, repeated, tag = "2")]
    pub attr: Vec<AttributeProto>,
}

/// One node of a rank's graph.
#[derive(Clone, PartialEq, Message)]
pub struct Node {
    /// Id, unique within the rank's file.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// [`NodeType`] as its wire value.
    #[prost(enumeration = "NodeType", tag = "3")]
    pub r#type: i32,
    /// Control dependencies (not honoured by ASTRA-sim; honoured here).
    #[prost(uint64, repeated, tag = "4")]
    pub ctrl_deps: Vec<u64>,
    /// Data dependencies.
    #[prost(uint64, repeated, tag = "5")]
    pub data_deps: Vec<u64>,
    /// Start time as profiled (ignored).
    #[prost(uint64, tag = "6")]
    pub start_time_micros: u64,
    /// Duration as profiled, in microseconds (0: not profiled).
    #[prost(uint64, tag = "7")]
    pub duration_micros: u64,
    /// Inputs (ignored).
    #[prost(message, optional, tag = "8")]
    pub inputs: Option<IoInfo>,
    /// Outputs (ignored).
    #[prost(message, optional, tag = "9")]
    pub outputs: Option<IoInfo>,
    /// Attributes (`num_ops`, `tensor_size`, `comm_type`, `comm_size`, `pg_name`, ...).
    #[prost(message, repeated, tag = "10")]
    pub attr: Vec<AttributeProto>,
}

/// A node's input or output description (ignored).
#[derive(Clone, PartialEq, Message)]
pub struct IoInfo {
    /// Values.
    #[prost(string, tag = "1")]
    pub values: String,
    /// Shapes.
    #[prost(string, tag = "2")]
    pub shapes: String,
    /// Types.
    #[prost(string, tag = "3")]
    pub types: String,
}

/// A named attribute with one value.
#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Documentation (ignored).
    #[prost(string, tag = "2")]
    pub doc_string: String,
    /// The value.
    #[prost(
        oneof = "Value",
        tags = "3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32"
    )]
    pub value: Option<Value>,
}

/// An attribute's value: a scalar, or a list (kept as its raw message: no attribute read here is
/// a list).
#[derive(Clone, PartialEq, Oneof)]
pub enum Value {
    /// double.
    #[prost(double, tag = "3")]
    DoubleVal(f64),
    /// float.
    #[prost(float, tag = "5")]
    FloatVal(f32),
    /// int32.
    #[prost(int32, tag = "7")]
    Int32Val(i32),
    /// int64.
    #[prost(int64, tag = "9")]
    Int64Val(i64),
    /// uint32.
    #[prost(uint32, tag = "11")]
    Uint32Val(u32),
    /// uint64.
    #[prost(uint64, tag = "13")]
    Uint64Val(u64),
    /// sint32.
    #[prost(sint32, tag = "15")]
    Sint32Val(i32),
    /// sint64.
    #[prost(sint64, tag = "17")]
    Sint64Val(i64),
    /// fixed32.
    #[prost(fixed32, tag = "19")]
    Fixed32Val(u32),
    /// fixed64.
    #[prost(fixed64, tag = "21")]
    Fixed64Val(u64),
    /// sfixed32.
    #[prost(sfixed32, tag = "23")]
    Sfixed32Val(i32),
    /// sfixed64.
    #[prost(sfixed64, tag = "25")]
    Sfixed64Val(i64),
    /// bool.
    #[prost(bool, tag = "27")]
    BoolVal(bool),
    /// string.
    #[prost(string, tag = "29")]
    StringVal(String),
    /// bytes.
    #[prost(bytes = "vec", tag = "31")]
    BytesVal(Vec<u8>),
    /// Lists of each type (fields 4, 6, ..., 32): kept undecoded.
    #[prost(bytes = "vec", tag = "4")]
    DoubleList(Vec<u8>),
    /// float list.
    #[prost(bytes = "vec", tag = "6")]
    FloatList(Vec<u8>),
    /// int32 list.
    #[prost(bytes = "vec", tag = "8")]
    Int32List(Vec<u8>),
    /// int64 list.
    #[prost(bytes = "vec", tag = "10")]
    Int64List(Vec<u8>),
    /// uint32 list.
    #[prost(bytes = "vec", tag = "12")]
    Uint32List(Vec<u8>),
    /// uint64 list.
    #[prost(bytes = "vec", tag = "14")]
    Uint64List(Vec<u8>),
    /// sint32 list.
    #[prost(bytes = "vec", tag = "16")]
    Sint32List(Vec<u8>),
    /// sint64 list.
    #[prost(bytes = "vec", tag = "18")]
    Sint64List(Vec<u8>),
    /// fixed32 list.
    #[prost(bytes = "vec", tag = "20")]
    Fixed32List(Vec<u8>),
    /// fixed64 list.
    #[prost(bytes = "vec", tag = "22")]
    Fixed64List(Vec<u8>),
    /// sfixed32 list.
    #[prost(bytes = "vec", tag = "24")]
    Sfixed32List(Vec<u8>),
    /// sfixed64 list.
    #[prost(bytes = "vec", tag = "26")]
    Sfixed64List(Vec<u8>),
    /// bool list.
    #[prost(bytes = "vec", tag = "28")]
    BoolList(Vec<u8>),
    /// string list.
    #[prost(bytes = "vec", tag = "30")]
    StringList(Vec<u8>),
    /// bytes list.
    #[prost(bytes = "vec", tag = "32")]
    BytesList(Vec<u8>),
}

impl Value {
    /// The value as an integer, whichever integer field holds it (producers differ: STG writes
    /// `is_cpu_op` as int32, ASTRA-sim reads `tensor_size` from uint64); none for other types.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::Int32Val(v) | Value::Sint32Val(v) | Value::Sfixed32Val(v) => v as i128,
            Value::Int64Val(v) | Value::Sint64Val(v) | Value::Sfixed64Val(v) => v as i128,
            Value::Uint32Val(v) | Value::Fixed32Val(v) => v as i128,
            Value::Uint64Val(v) | Value::Fixed64Val(v) => v as i128,
            Value::BoolVal(v) => v as i128,
            _ => return None,
        })
    }
}

/// Node types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum NodeType {
    /// Skipped.
    Invalid = 0,
    /// Metadata (skipped).
    Metadata = 1,
    /// A load from remote memory.
    MemLoad = 2,
    /// A store to remote memory.
    MemStore = 3,
    /// Computation.
    Comp = 4,
    /// A point-to-point send.
    CommSend = 5,
    /// A point-to-point receive.
    CommRecv = 6,
    /// A collective.
    CommColl = 7,
}

/// Collective types (`comm_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CollectiveCommType {
    /// All-reduce.
    AllReduce = 0,
    /// Reduce to one rank.
    Reduce = 1,
    /// All-gather.
    AllGather = 2,
    /// Gather to one rank.
    Gather = 3,
    /// Scatter from one rank.
    Scatter = 4,
    /// Broadcast.
    Broadcast = 5,
    /// All-to-all.
    AllToAll = 6,
    /// Reduce-scatter.
    ReduceScatter = 7,
    /// Reduce-scatter of equal blocks.
    ReduceScatterBlock = 8,
    /// Barrier.
    Barrier = 9,
    /// Invalid.
    InvalidCommType = 99,
}

/// Reads one varint-length-delimited record from `buf` at `pos`: its bytes and the next position;
/// `Ok(None)` at the end; an error for a truncated length or body.
pub fn next_record(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, String> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let mut len: u64 = 0;
    let mut at = pos;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(at) else {
            return Err(format!("truncated record length at byte {pos}"));
        };
        at += 1;
        len |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            let end = at.checked_add(len as usize).filter(|&e| e <= buf.len());
            return match end {
                Some(end) => Ok(Some((&buf[at..end], end))),
                None => Err(format!(
                    "truncated record at byte {pos}: it says {len} bytes, {} are left",
                    buf.len() - at
                )),
            };
        }
    }
    Err(format!("bad record length at byte {pos}"))
}

/// Decodes a message, naming what failed.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, String> {
    M::decode(bytes).map_err(|e| format!("not a Chakra record: {e}"))
}
