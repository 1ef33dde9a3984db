//! The message size limit, enforced on the bytes as they arrive.
//!
//! actix's WebSocket codec checks a frame's size only once the whole frame is buffered, so a
//! header declaring 2^40 bytes made the server buffer whatever the client sent. This reads
//! each frame header (RFC 6455 §5.2) as it passes, before any of its payload is buffered, and
//! ends the stream when a frame, or a message's frames together (continuations), would be
//! larger than the limit. The connection then closes with 1009 (message too big).

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use actix_web::{error::PayloadError, web::Bytes};
use futures_util::Stream;

/// Passes `inner`'s bytes on until a frame header announces more than `max` bytes of one
/// message; then yields `PayloadError::Overflow` and ends.
pub struct FrameLimit<S> {
    inner: S,
    max: u64,
    /// The header being read, up to its 14 bytes.
    header: [u8; 14],
    header_read: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: u64,
    /// Bytes of the data message being received, over its frames so far.
    message: u64,
    tripped: bool,
}

impl<S> FrameLimit<S> {
    pub fn new(inner: S, max: usize) -> Self {
        Self {
            inner,
            max: max as u64,
            header: [0; 14],
            header_read: 0,
            payload_left: 0,
            message: 0,
            tripped: false,
        }
    }

    /// Reads the frame headers in `chunk`; `false` when one goes over the limit.
    fn scan(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let skipped = self.payload_left.min(chunk.len() as u64);
                self.payload_left -= skipped;
                chunk = &chunk[skipped as usize..];
                continue;
            }
            self.header[self.header_read] = chunk[0];
            self.header_read += 1;
            chunk = &chunk[1..];
            let Some(length) = self.header_complete() else {
                continue;
            };
            self.header_read = 0;
            let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0f);
            if opcode < 8 {
                // A data frame: text, binary, or a continuation of the message before.
                if opcode != 0 {
                    self.message = 0;
                }
                self.message = self.message.saturating_add(length);
                if length > self.max || self.message > self.max {
                    return false;
                }
                if fin {
                    self.message = 0;
                }
            } else if length > 125 {
                return false; // control frames carry at most 125 bytes
            }
            self.payload_left = length;
        }
        true
    }

    /// The payload length once the whole header is read.
    fn header_complete(&self) -> Option<u64> {
        let read = self.header_read;
        if read < 2 {
            return None;
        }
        let masked = self.header[1] & 0x80 != 0;
        let (extended, short) = match self.header[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            length => (0, Some(u64::from(length))),
        };
        let total = 2 + extended + if masked { 4 } else { 0 };
        if read < total {
            return None;
        }
        Some(short.unwrap_or_else(|| {
            self.header[2..2 + extended]
                .iter()
                .fold(0_u64, |length, &byte| (length << 8) | u64::from(byte))
        }))
    }
}

impl<S> Stream for FrameLimit<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.tripped {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if this.scan(&bytes) {
                    Poll::Ready(Some(Ok(bytes)))
                } else {
                    this.tripped = true;
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            }
            other => other,
        }
    }
}

/// Whether a stream error is this limit's (or the codec's own size check).
pub fn is_overflow(error: &actix_ws::ProtocolError) -> bool {
    match error {
        actix_ws::ProtocolError::Overflow => true,
        actix_ws::ProtocolError::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<PayloadError>())
            .is_some_and(|inner| matches!(inner, PayloadError::Overflow)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut bytes = vec![(u8::from(fin) << 7) | opcode];
        match length {
            0..=125 => bytes.push(0x80 | length as u8),
            126..=0xffff => {
                bytes.push(0x80 | 0x7e);
                bytes.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 0x7f);
                bytes.extend_from_slice(&length.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]); // the mask
        bytes.resize(bytes.len() + length.min(4096) as usize, b'x');
        bytes
    }

    fn limit() -> FrameLimit<futures_util::stream::Empty<Result<Bytes, PayloadError>>> {
        FrameLimit::new(futures_util::stream::empty(), 1000)
    }

    #[test]
    fn frames_within_the_limit_pass_even_split_byte_by_byte() {
        let mut guard = limit();
        let bytes = [
            frame(true, 1, 1000),
            frame(true, 9, 10),
            frame(true, 1, 300),
        ]
        .concat();
        for byte in bytes {
            assert!(guard.scan(&[byte]));
        }
    }

    #[test]
    fn a_header_announcing_too_much_trips_before_its_payload() {
        let mut guard = limit();
        assert!(
            guard.scan(&frame(true, 1, 1 << 40)[..13]),
            "not before the header is whole"
        );
        assert!(!guard.scan(&frame(true, 1, 1 << 40)[13..14]));
        assert!(!limit().scan(&frame(true, 2, 1001)[..8]));
    }

    #[test]
    fn continuations_count_together_and_control_frames_between_them_do_not() {
        let mut guard = limit();
        assert!(guard.scan(&frame(false, 1, 600)));
        assert!(guard.scan(&frame(true, 9, 100)));
        assert!(!guard.scan(&frame(true, 0, 401)));
        let mut fresh = limit();
        assert!(fresh.scan(&[frame(false, 1, 600), frame(true, 0, 400)].concat()));
        assert!(
            fresh.scan(&frame(true, 1, 1000)),
            "a new message starts from zero"
        );
    }
}
