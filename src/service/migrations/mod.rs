//! Schema migrations of managed databases: the files in a database's
//! migrations directory ([`source`]) and how they compare with what the
//! database says it has applied ([`plan`]).

pub mod plan;
pub mod source;

use sha2::{Digest, Sha256};

/// The checksum Custodian records and compares: SHA-256 of the file's bytes,
/// lower-case hex.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
