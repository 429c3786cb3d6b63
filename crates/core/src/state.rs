//! Operator state as bytes, for snapshots: a format version, then the state in postcard's
//! compact binary encoding. Every stateful operator uses these two functions, so a version
//! mismatch or a corrupt snapshot is reported the same way everywhere.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Encodes `state` of format `version`; `what` names the operator in errors.
pub fn encode<T: Serialize>(what: &str, version: u32, state: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(&(version, state))
        .map_err(|e| Error::State(format!("encoding {what} state: {e}")))
}

/// Decodes state written by [`encode`], refusing another format version.
pub fn decode<T: DeserializeOwned>(what: &str, version: u32, bytes: &[u8]) -> Result<T> {
    let (found, rest): (u32, &[u8]) = postcard::take_from_bytes(bytes)
        .map_err(|e| Error::State(format!("decoding {what} state: {e}")))?;
    if found != version {
        return Err(Error::State(format!(
            "{what} state has format version {found}, this weir reads {version}"
        )));
    }
    postcard::from_bytes(rest).map_err(|e| Error::State(format!("decoding {what} state: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_version_check_and_corruption() {
        let bytes = encode("test", 3, &vec![1u64, 2, 3]).unwrap();
        assert_eq!(decode::<Vec<u64>>("test", 3, &bytes).unwrap(), [1, 2, 3]);
        assert_eq!(
            decode::<Vec<u64>>("test", 4, &bytes)
                .unwrap_err()
                .to_string(),
            "state: test state has format version 3, this weir reads 4"
        );
        assert!(
            decode::<Vec<u64>>("test", 3, &bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
    }
}
