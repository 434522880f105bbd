//! After `AUTH TLS` (RFC 4217) a control connection carries TLS records, which ftpwatch
//! does not decrypt. It follows them by their 5-byte headers only, so that it sees
//! where a direction returns to cleartext: after `CCC` (RFC 4217 §6, "firewall-friendly
//! FTPS", used so that gateways and NAT helpers can read PASV and PORT) both sides send
//! a close_notify alert and go on in plain FTP.
//!
//! A record header is a content type (20-24: change_cipher_spec, alert, handshake,
//! application_data, heartbeat), a version 3.x and a length of at most 2^14 + 2048
//! (RFC 5246 §6.2.3). At a record boundary, a byte that starts an FTP line (a letter,
//! a digit, or Telnet's IAC) is the return to cleartext: no record starts with one.
//! Anything else, or a gap in the stream, loses the record boundaries for good, and
//! the direction stays opaque.

/// Longest record body TLS allows (RFC 5246 §6.2.3; TLS 1.3's is shorter).
const MAX_RECORD: usize = (1 << 14) + 2048;
const HEADER: usize = 5;

/// One direction of a control connection while it carries TLS.
#[derive(Debug, Default, Clone)]
pub struct RecordStream {
    /// Bytes of the current record's body still to come.
    body_left: usize,
    /// The start of a record header split across deliveries.
    header: [u8; HEADER],
    header_len: u8,
    /// Whole records seen.
    records: u32,
    /// Record boundaries are unknown: nothing more can be told about this direction.
    lost: bool,
}

/// What one delivery of bytes turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Follow {
    /// All of it was TLS (or could not be told apart from it).
    Encrypted,
    /// Cleartext starts at this offset, after `records` TLS records in all.
    Cleartext { at: usize, records: u32 },
}

impl RecordStream {
    pub fn feed(&mut self, bytes: &[u8]) -> Follow {
        let mut i = 0;
        while i < bytes.len() && !self.lost {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len() - i);
                self.body_left -= n;
                i += n;
                continue;
            }
            if self.header_len == 0 && !is_content_type(bytes[i]) {
                if starts_ftp_line(bytes[i]) {
                    return Follow::Cleartext {
                        at: i,
                        records: self.records,
                    };
                }
                self.lost = true;
                break;
            }
            let have = self.header_len as usize;
            let take = (HEADER - have).min(bytes.len() - i);
            self.header[have..have + take].copy_from_slice(&bytes[i..i + take]);
            self.header_len += take as u8;
            i += take;
            if self.header_len as usize == HEADER {
                self.header_len = 0;
                match body_len(&self.header) {
                    Some(len) => {
                        self.body_left = len;
                        self.records = self.records.saturating_add(1);
                    }
                    None => self.lost = true,
                }
            }
        }
        Follow::Encrypted
    }

    /// Bytes were lost: record boundaries cannot be found again.
    pub fn gap(&mut self) {
        self.lost = true;
    }
}

fn is_content_type(b: u8) -> bool {
    (20..=24).contains(&b)
}

fn starts_ftp_line(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == 0xff
}

/// The body length of a plausible record header.
fn body_len(h: &[u8; HEADER]) -> Option<usize> {
    let len = u16::from_be_bytes([h[3], h[4]]) as usize;
    (is_content_type(h[0]) && h[1] == 3 && h[2] <= 4 && len <= MAX_RECORD).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: usize) -> Vec<u8> {
        let mut r = vec![kind, 3, 3, (body >> 8) as u8, body as u8];
        r.extend(std::iter::repeat_n(0xa5, body));
        r
    }

    #[test]
    fn records_then_close_notify_then_cleartext() {
        let mut s = RecordStream::default();
        let mut stream = record(22, 300);
        stream.extend(record(23, 1000));
        stream.extend(record(21, 26)); // close_notify, encrypted
        let clear = stream.len();
        stream.extend(b"PASV\r\n");
        assert_eq!(
            s.feed(&stream),
            Follow::Cleartext {
                at: clear,
                records: 3
            }
        );
    }

    #[test]
    fn headers_and_bodies_split_anywhere() {
        let mut stream = record(22, 517);
        stream.extend(record(20, 1));
        stream.extend(record(23, 16_384 + 2048));
        stream.extend(b"227 Entering Passive Mode (10,0,0,1,4,1)\r\n");
        for chunk in [1, 2, 3, 5, 7, 1448] {
            let mut s = RecordStream::default();
            let mut found = None;
            for (n, part) in stream.chunks(chunk).enumerate() {
                if let Follow::Cleartext { at, records } = s.feed(part) {
                    found = Some((n * chunk + at, records));
                    break;
                }
            }
            assert_eq!(found, Some((stream.len() - 42, 3)), "chunks of {chunk}");
        }
    }

    #[test]
    fn cleartext_at_once_is_found_too() {
        // A client that never started TLS after the 234.
        let mut s = RecordStream::default();
        assert_eq!(
            s.feed(b"USER x\r\n"),
            Follow::Cleartext { at: 0, records: 0 }
        );
    }

    #[test]
    fn garbage_or_a_gap_loses_the_stream_for_good() {
        let mut s = RecordStream::default();
        assert_eq!(s.feed(&[0x80, 0x2e, 0x01]), Follow::Encrypted); // SSLv2 hello
        assert_eq!(s.feed(b"PASV\r\n"), Follow::Encrypted);
        let mut s = RecordStream::default();
        s.feed(&record(23, 100)[..50]);
        s.gap();
        assert_eq!(s.feed(b"PASV\r\n"), Follow::Encrypted);
    }

    #[test]
    fn implausible_headers_lose_the_stream() {
        for h in [
            [23u8, 2, 0, 0, 10],    // version 2.0
            [23, 3, 9, 0, 10],      // version 3.9
            [23, 3, 3, 0x48, 0x01], // 18433 bytes: longer than any record
        ] {
            let mut s = RecordStream::default();
            assert_eq!(s.feed(&h), Follow::Encrypted);
            assert_eq!(s.feed(b"227 x\r\n"), Follow::Encrypted, "{h:?}");
        }
    }

    #[test]
    fn a_record_body_that_looks_like_text_is_still_the_record() {
        let mut s = RecordStream::default();
        let mut r = vec![23, 3, 3, 0, 6];
        r.extend(b"PASV\r\n");
        assert_eq!(s.feed(&r), Follow::Encrypted);
        assert_eq!(s.feed(b"NOOP\r\n"), Follow::Cleartext { at: 0, records: 1 });
    }
}
