//! The binary tensor data extension of Triton, which `tritonclient` uses by
//! default: the body is a JSON header of `Inference-Header-Content-Length`
//! bytes followed by the raw little-endian tensors, in input order.

use crate::error::ApiError;

/// Splits a body into its JSON header and the binary part after it.
pub fn split_body<'a>(body: &'a [u8], header_length: Option<&str>) -> Result<(&'a [u8], &'a [u8]), ApiError> {
    let Some(text) = header_length else { return Ok((body, &[])) };
    let length: usize = text.trim().parse().map_err(|_| {
        ApiError::bad_request(format!("header Inference-Header-Content-Length is `{text}`; it must be a byte count"))
    })?;
    if length > body.len() {
        return Err(ApiError::bad_request(format!(
            "header Inference-Header-Content-Length is {length} but the body has only {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(length))
}

/// Hands out consecutive slices of the binary part, checking that the sizes
/// the header declares match what was sent.
pub struct BinaryCursor<'a> {
    rest: &'a [u8],
}

impl<'a> BinaryCursor<'a> {
    pub fn new(binary: &'a [u8]) -> Self {
        BinaryCursor { rest: binary }
    }

    pub fn take(&mut self, input: &str, size: usize) -> Result<&'a [u8], ApiError> {
        if size > self.rest.len() {
            return Err(ApiError::bad_request(format!(
                "input `{input}` declares binary_data_size {size} but only {} bytes of binary data remain",
                self.rest.len()
            )));
        }
        let (head, rest) = self.rest.split_at(size);
        self.rest = rest;
        Ok(head)
    }

    /// Fails when bytes are left over, which means the header and the binary
    /// part disagree.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "the body has {} bytes of binary data that no input's binary_data_size accounts for",
                self.rest.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_splits_at_header_length() {
        let body = b"{\"a\":1}\x01\x02";
        let (json, binary) = split_body(body, Some("7")).unwrap();
        assert_eq!(json, b"{\"a\":1}");
        assert_eq!(binary, b"\x01\x02");
        assert_eq!(split_body(body, Some("99")).unwrap_err().status, 400);
        assert_eq!(split_body(body, Some("x")).unwrap_err().status, 400);
    }

    #[test]
    fn cursor_rejects_short_and_leftover_data() {
        let mut cursor = BinaryCursor::new(b"abcd");
        assert_eq!(cursor.take("x", 3).unwrap(), b"abc");
        assert!(cursor.take("y", 2).is_err());
        let mut cursor = BinaryCursor::new(b"abcd");
        cursor.take("x", 2).unwrap();
        assert!(cursor.finish().is_err());
    }
}
