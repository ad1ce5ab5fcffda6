//! A gzip writer that starts a new gzip member whenever the compression
//! mode changes.
//!
//! Concatenated gzip members form one valid `.gz` stream (RFC 1952, 2.2):
//! `gzip -d`, GNU tar, Python's `tarfile` and flate2's `MultiGzDecoder`
//! decode them as one. A member is only started when data is written, so a
//! mode switch with nothing in between costs nothing.

use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

/// How the bytes written next are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Level-0 deflate (stored blocks): for payloads that are already
    /// compressed.
    Stored,
    /// Normal deflate.
    Deflate,
}

impl Mode {
    fn level(self) -> Compression {
        match self {
            Mode::Stored => Compression::none(),
            Mode::Deflate => Compression::default(),
        }
    }
}

/// See the module docs.
pub(crate) struct MultiGzWriter<W: Write> {
    /// The sink while no member is open.
    idle: Option<W>,
    /// The open member.
    open: Option<GzEncoder<W>>,
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
            self.encoder()?;
        }
        self.close_member()?;
        self.idle.take().ok_or_else(broken)
    }

    fn close_member(&mut self) -> io::Result<()> {
        if let Some(enc) = self.open.take() {
            self.idle = Some(enc.finish()?);
        }
        Ok(())
    }

    fn encoder(&mut self) -> io::Result<&mut GzEncoder<W>> {
        if self.open.is_none() {
            let sink = self.idle.take().ok_or_else(broken)?;
            // Header fields fixed (mtime 0, OS "unknown") so archives of the
            // same tree are byte-identical.
            let enc = GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(sink, self.mode.level());
            self.open = Some(enc);
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
        self.encoder()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.encoder()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match (&mut self.open, &mut self.idle) {
            (Some(enc), _) => enc.flush(),
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
    fn an_empty_stream_is_still_valid_gzip() {
        let gz = MultiGzWriter::new(Vec::new(), Mode::Stored)
            .finish()
            .unwrap();
        let mut out = Vec::new();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
    }
}
