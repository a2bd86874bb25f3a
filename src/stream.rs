//! Streams: entries in `redlite_stream_entries`, groups, consumers and pending entries in
//! their own tables; then the command handlers.
//!
//! An entry's fields are stored as one BLOB: the MessagePack array `[f1, v1, f2, v2, …]`
//! of binary strings, which keeps field order and duplicate fields as Redis does.

use serde_bytes::ByteBuf;

use crate::command::Spec;
use crate::vtab::TableFn;

/// This module's command rows.
pub static COMMANDS: &[Spec] = &[];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[];

/// Encodes an entry's field/value pairs for `redlite_stream_entries.fields`.
pub fn encode_fields(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let flat: Vec<ByteBuf> = pairs
        .iter()
        .flat_map(|(f, v)| [ByteBuf::from(f.clone()), ByteBuf::from(v.clone())])
        .collect();
    // Serializing a Vec of byte buffers into memory cannot fail.
    rmp_serde::to_vec(&flat).unwrap_or_default()
}

/// Decodes `redlite_stream_entries.fields`; a damaged blob decodes to no fields.
pub fn decode_fields(blob: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let flat: Vec<ByteBuf> = rmp_serde::from_slice(blob).unwrap_or_default();
    flat.chunks_exact(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_in_order_with_duplicates_and_binary() {
        let pairs = vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"a".to_vec(), vec![0, 255]),
            (b"b".to_vec(), Vec::new()),
        ];
        assert_eq!(decode_fields(&encode_fields(&pairs)), pairs);
        assert!(decode_fields(b"garbage").is_empty());
    }
}
