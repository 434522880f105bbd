//! Framing of one direction of a relayed control connection. Unlike the engine's
//! framer, it keeps every byte: a line comes out with its own line ending, so what is
//! passed on is what was received. A line longer than the cap is not held: it goes out
//! in pieces as it arrives, unparsed (no command or reply the proxy rewrites is that
//! long), so a direction never holds more than `max_line` plus one read.

/// A piece of the stream, ready to pass on.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A whole line, with its line ending.
    Line(Vec<u8>),
    /// Part of a line over the cap (or its end), passed on as is.
    Long(Vec<u8>),
}

#[derive(Debug)]
pub struct LineBuf {
    buf: Vec<u8>,
    start: usize,
    max_line: usize,
    /// Inside a line over the cap: the rest of it, up to LF, is `Long` too.
    in_long: bool,
}

/// Bytes read at once from a control connection.
pub const READ_CHUNK: usize = 16 << 10;

impl LineBuf {
    pub fn new(max_line: usize) -> Self {
        LineBuf {
            buf: Vec::new(),
            start: 0,
            max_line,
            in_long: false,
        }
    }

    /// The buffer to read into: what is consumed is dropped first, and room for one
    /// read is made, so the buffer never exceeds `max_line + READ_CHUNK`.
    pub fn for_read(&mut self) -> &mut Vec<u8> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let room = self.buf.capacity() - self.buf.len();
        if room < READ_CHUNK {
            self.buf.reserve_exact(READ_CHUNK);
        }
        &mut self.buf
    }

    /// Bytes held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Where the next read's bytes will start (an absolute position, stable until the
    /// next `for_read`).
    pub fn end(&self) -> usize {
        self.buf.len()
    }

    /// Room for one more read without moving what is held (positions stay valid).
    pub fn for_read_in_place(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.reserve_exact(READ_CHUNK);
        }
        &mut self.buf
    }

    /// The held bytes before `at`, unframed (what precedes an urgent mark: a partial line
    /// there is passed on as it is).
    pub fn take_before(&mut self, at: usize) -> Vec<u8> {
        let at = at.clamp(self.start, self.buf.len());
        let out = self.buf[self.start..at].to_vec();
        self.start = at;
        self.in_long = false;
        out
    }

    /// The bytes held, unframed (to look at what starts the stream after CCC).
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drop the first `n` bytes held.
    pub fn skip(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
    }

    pub fn next_piece(&mut self) -> Option<Piece> {
        self.next_piece_before(self.buf.len())
    }

    /// The next piece that ends before `limit` (an absolute position); a line not
    /// complete by then stays held.
    pub fn next_piece_before(&mut self, limit: usize) -> Option<Piece> {
        let limit = limit.clamp(self.start, self.buf.len());
        let held = &self.buf[self.start..limit];
        if held.is_empty() {
            return None;
        }
        match held.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let piece = held[..=i].to_vec();
                self.start += i + 1;
                if std::mem::take(&mut self.in_long) {
                    Some(Piece::Long(piece))
                } else {
                    Some(Piece::Line(piece))
                }
            }
            None if self.in_long || held.len() > self.max_line => {
                let piece = held.to_vec();
                self.start = limit;
                self.in_long = true;
                Some(Piece::Long(piece))
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(b: &mut LineBuf, bytes: &[u8]) -> Vec<Piece> {
        b.for_read().extend_from_slice(bytes);
        std::iter::from_fn(|| b.next_piece()).collect()
    }

    #[test]
    fn lines_keep_their_own_endings_and_wait_for_the_rest() {
        let mut b = LineBuf::new(64);
        assert_eq!(
            feed(&mut b, b"USER a\r\nPASV\nRE"),
            vec![
                Piece::Line(b"USER a\r\n".to_vec()),
                Piece::Line(b"PASV\n".to_vec())
            ]
        );
        assert_eq!(b.held(), 2);
        assert_eq!(
            feed(&mut b, b"TR x\r\n"),
            vec![Piece::Line(b"RETR x\r\n".to_vec())]
        );
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn a_line_over_the_cap_passes_in_pieces_and_framing_resumes_after_it() {
        let mut b = LineBuf::new(8);
        assert_eq!(
            feed(&mut b, b"0123456789"),
            vec![Piece::Long(b"0123456789".to_vec())]
        );
        assert_eq!(b.held(), 0);
        assert_eq!(feed(&mut b, b"ab"), vec![Piece::Long(b"ab".to_vec())]);
        assert_eq!(
            feed(&mut b, b"c\r\nPASV\r\n"),
            vec![
                Piece::Long(b"c\r\n".to_vec()),
                Piece::Line(b"PASV\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn the_buffer_stays_bounded_whatever_arrives() {
        let mut b = LineBuf::new(100);
        for _ in 0..1000 {
            let junk = vec![b'x'; READ_CHUNK];
            let v = b.for_read();
            v.extend_from_slice(&junk);
            assert!(v.len() <= 100 + READ_CHUNK);
            while b.next_piece().is_some() {}
        }
        assert!(b.buf.capacity() <= 2 * (100 + READ_CHUNK));
    }

    #[test]
    fn bytes_before_a_mark_are_framed_up_to_it_and_the_rest_waits() {
        let mut b = LineBuf::new(64);
        b.for_read().extend_from_slice(b"NOOP\r\nABOR\r");
        let mark = b.end();
        b.for_read_in_place().extend_from_slice(b"\nQUIT\r\n");
        assert_eq!(
            b.next_piece_before(mark),
            Some(Piece::Line(b"NOOP\r\n".to_vec()))
        );
        assert_eq!(
            b.next_piece_before(mark),
            None,
            "ABOR\\r is not a whole line"
        );
        assert_eq!(b.take_before(mark), b"ABOR\r");
        assert_eq!(b.next_piece(), Some(Piece::Line(b"\n".to_vec())));
        assert_eq!(b.next_piece(), Some(Piece::Line(b"QUIT\r\n".to_vec())));
    }

    #[test]
    fn pending_shows_the_unframed_rest_and_skip_drops_it() {
        let mut b = LineBuf::new(64);
        assert_eq!(
            feed(&mut b, b"CCC\r\n"),
            vec![Piece::Line(b"CCC\r\n".to_vec())]
        );
        b.for_read()
            .extend_from_slice(b"\x15\x03\x03\x00\x02\x01\x00NOOP\r\n");
        assert_eq!(&b.pending()[..3], b"\x15\x03\x03");
        b.skip(7);
        assert_eq!(b.next_piece(), Some(Piece::Line(b"NOOP\r\n".to_vec())));
        assert_eq!(b.held(), 0);
        b.skip(5);
        assert_eq!(b.held(), 0, "skip stops at what is held");
    }
}
