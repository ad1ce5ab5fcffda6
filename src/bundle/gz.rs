//! A gzip writer that starts a new gzip member whenever the compression
//! mode changes.
//!
//! Concatenated gzip members form one valid `.gz` stream (RFC 1952, 2.2):
//! `gzip -d`, GNU tar, Python's `tarfile` and flate2's `MultiGzDecoder`
//! decode them as one. A member is only started when data is written, so a
//! mode switch with nothing in between costs nothing.

use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::{Compression, Crc, GzBuilder};

/// How the bytes written next are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Stored deflate blocks (level 0): for payloads that are already
    /// compressed. Written here directly, so the data is copied once and
    /// only the CRC is computed.
    Stored,
    /// Normal deflate (flate2, default level).
    Deflate,
}

/// The open gzip member.
enum Open<W: Write> {
    Deflate(GzEncoder<W>),
    Stored { sink: W, crc: Crc },
}

/// The fixed member header: magic, deflate, no flags, mtime 0, no extra
/// flags, OS "unknown" (so archives of the same tree are byte-identical).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Largest stored block (LEN is 16 bits).
const MAX_STORED: usize = 0xffff;

/// See the module docs.
pub(crate) struct MultiGzWriter<W: Write> {
    /// The sink while no member is open.
    idle: Option<W>,
    open: Option<Open<W>>,
    mode: Mode,
    members: u64,
}

impl<W: Write> MultiGzWriter<W> {
    pub(crate) fn new(inner: W, mode: Mode) -> Self {
        MultiGzWriter {
            idle: Some(inner),
            open: None,
            mode,
            members: 0,
        }
    }

    /// Compress what is written next with `mode`.
    pub(crate) fn set_mode(&mut self, mode: Mode) -> io::Result<()> {
        if mode != self.mode {
            self.close_member()?;
            self.mode = mode;
        }
        Ok(())
    }

    /// How many gzip members were started so far.
    pub(crate) fn members(&self) -> u64 {
        self.members
    }

    /// Close the last member and return the sink. A stream with no data at
    /// all still gets one (empty) member, so the result is a valid `.gz`.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.members == 0 {
            self.member()?;
        }
        self.close_member()?;
        self.idle.take().ok_or_else(broken)
    }

    fn close_member(&mut self) -> io::Result<()> {
        match self.open.take() {
            None => {}
            Some(Open::Deflate(enc)) => self.idle = Some(enc.finish()?),
            Some(Open::Stored { mut sink, crc }) => {
                // An empty final block, then CRC-32 and length mod 2^32.
                sink.write_all(&[1, 0, 0, 0xff, 0xff])?;
                sink.write_all(&crc.sum().to_le_bytes())?;
                sink.write_all(&crc.amount().to_le_bytes())?;
                self.idle = Some(sink);
            }
        }
        Ok(())
    }

    fn member(&mut self) -> io::Result<&mut Open<W>> {
        if self.open.is_none() {
            let mut sink = self.idle.take().ok_or_else(broken)?;
            let open = match self.mode {
                Mode::Deflate => Open::Deflate(
                    GzBuilder::new()
                        .mtime(0)
                        .operating_system(255)
                        .write(sink, Compression::default()),
                ),
                Mode::Stored => {
                    sink.write_all(&HEADER)?;
                    Open::Stored {
                        sink,
                        crc: Crc::new(),
                    }
                }
            };
            self.open = Some(open);
            self.members += 1;
        }
        Ok(self.open.as_mut().expect("just opened"))
    }
}

fn broken() -> io::Error {
    io::Error::other("gzip writer unusable after an earlier error")
}

impl<W: Write> Write for MultiGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.member()? {
            Open::Deflate(enc) => enc.write(buf),
            Open::Stored { sink, crc } => {
                let block = &buf[..buf.len().min(MAX_STORED)];
                let len = block.len() as u16;
                let [l0, l1] = len.to_le_bytes();
                let [n0, n1] = (!len).to_le_bytes();
                sink.write_all(&[0, l0, l1, n0, n1])?;
                sink.write_all(block)?;
                crc.update(block);
                Ok(block.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match (&mut self.open, &mut self.idle) {
            (Some(Open::Deflate(enc)), _) => enc.flush(),
            (Some(Open::Stored { sink, .. }), _) => sink.flush(),
            (None, Some(w)) => w.flush(),
            (None, None) => Err(broken()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Read;

    #[test]
    fn switching_modes_makes_members_that_decode_as_one_stream() {
        let mut w = MultiGzWriter::new(Vec::new(), Mode::Deflate);
        let text = b"hello hello hello hello\n".repeat(100);
        w.write_all(&text).unwrap();
        w.set_mode(Mode::Stored).unwrap();
        w.set_mode(Mode::Stored).unwrap();
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        w.write_all(&noise).unwrap();
        w.set_mode(Mode::Deflate).unwrap();
        w.set_mode(Mode::Stored).unwrap(); // nothing written: no empty member
        w.set_mode(Mode::Deflate).unwrap();
        w.write_all(&text).unwrap();
        assert_eq!(w.members(), 3);
        let gz = w.finish().unwrap();
        let mut out = Vec::new();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        let mut want = text.clone();
        want.extend_from_slice(&noise);
        want.extend_from_slice(&text);
        assert_eq!(out, want);
    }

    #[test]
    fn stored_mode_costs_five_bytes_per_block() {
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let mut w = MultiGzWriter::new(Vec::new(), Mode::Stored);
        w.write_all(&noise).unwrap();
        let gz = w.finish().unwrap();
        // header + 4 blocks + empty final block + trailer
        assert_eq!(gz.len(), 10 + noise.len() + 4 * 5 + 5 + 8);
        let mut out = Vec::new();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, noise);
    }

    #[test]
    fn an_empty_stream_is_still_valid_gzip() {
        let gz = MultiGzWriter::new(Vec::new(), Mode::Stored)
            .finish()
            .unwrap();
        let mut out = Vec::new();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
    }
}
