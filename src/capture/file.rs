//! Capture files and standard input: the format is read from the magic number at the
//! start of the input (that is what magic numbers are for), never from the file name.

use std::fs::File;
use std::io::Read;

use super::bytes::ByteReader;
use super::error::{CaptureError, ErrorKind};
use super::pcap::{self, PcapReader};
use super::pcapng::{self, PcapNgReader};
use super::{FrameSource, Next};

/// A pcap or pcapng reader over any byte stream.
pub enum FileSource<R> {
    Pcap(PcapReader<R>),
    PcapNg(PcapNgReader<R>),
}

impl<R: Read> FileSource<R> {
    pub fn new(input: R) -> Result<Self, CaptureError> {
        let mut bytes = ByteReader::new(input);
        let got = bytes.fill(4)?;
        if got == 0 {
            return Err(CaptureError::new(0, ErrorKind::Empty));
        }
        let mut m = [0u8; 4];
        m[..got.min(4)].copy_from_slice(&bytes.available()[..got.min(4)]);
        if got < 4 {
            return Err(CaptureError::new(0, ErrorKind::NotACapture(m)));
        }
        let le = u32::from_le_bytes(m);
        if [pcap::MAGIC_MICROS, pcap::MAGIC_NANOS].contains(&le)
            || [pcap::MAGIC_MICROS, pcap::MAGIC_NANOS].contains(&le.swap_bytes())
        {
            Ok(FileSource::Pcap(PcapReader::new(bytes)?))
        } else if le == pcapng::SHB {
            Ok(FileSource::PcapNg(PcapNgReader::new(bytes)))
        } else {
            Err(CaptureError::new(0, ErrorKind::NotACapture(m)))
        }
    }
}

impl FileSource<Box<dyn Read + Send>> {
    /// Open a path, or standard input for `-`.
    pub fn open(path: &str) -> Result<Self, CaptureError> {
        let input: Box<dyn Read + Send> = if path == "-" {
            // Not locked: a locked handle cannot move to a capture thread. Reads are
            // 1 MiB at a time, so the per-read lock costs nothing.
            Box::new(std::io::stdin())
        } else {
            let f = File::open(path).map_err(|e| CaptureError::new(0, ErrorKind::Open(e)))?;
            Box::new(f)
        };
        FileSource::new(input)
    }
}

impl<R: Read> FrameSource for FileSource<R> {
    fn next_frame(&mut self) -> Result<Next<'_>, CaptureError> {
        match self {
            FileSource::Pcap(r) => r.next_record(),
            FileSource::PcapNg(r) => r.next_record(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameTime;
    use crate::capture::writer::{PcapNgWriter, PcapWriter};
    use crate::capture::{LinkType, SkippedRecord};

    /// (ts nanos, link, data, orig_len) or a skipped reason, until the end or an error.
    type Seen = Vec<Result<(u64, u16, Vec<u8>, u32), SkippedRecord>>;

    fn read_all(bytes: &[u8]) -> (Seen, Option<String>) {
        let mut seen = Vec::new();
        let mut src = match FileSource::new(bytes) {
            Ok(s) => s,
            Err(e) => return (seen, Some(e.to_string())),
        };
        loop {
            match src.next_frame() {
                Ok(Next::Frame(f)) => {
                    seen.push(Ok((f.ts.as_nanos(), f.link.0, f.data.to_vec(), f.orig_len)))
                }
                Ok(Next::Skipped(r)) => seen.push(Err(r)),
                Ok(Next::End) => return (seen, None),
                Err(e) => return (seen, Some(e.to_string())),
            }
        }
    }

    fn pcap(nanos: bool, packets: &[(u64, &[u8], u32)]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535, nanos).unwrap();
        for (ts, d, orig) in packets {
            w.packet(FrameTime::from_nanos(*ts), d, *orig).unwrap();
        }
        w.into_inner()
    }

    /// The same file with every header field byte-swapped (a big-endian writer).
    fn to_big_endian(le: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let swap4 = |b: &[u8]| [b[3], b[2], b[1], b[0]];
        out.extend(swap4(&le[0..4]));
        out.extend([le[5], le[4], le[7], le[6]]);
        for i in (8..24).step_by(4) {
            out.extend(swap4(&le[i..i + 4]));
        }
        let mut p = 24;
        while p < le.len() {
            for i in (p..p + 16).step_by(4) {
                out.extend(swap4(&le[i..i + 4]));
            }
            let caplen = u32::from_le_bytes(le[p + 8..p + 12].try_into().unwrap()) as usize;
            out.extend(&le[p + 16..p + 16 + caplen]);
            p += 16 + caplen;
        }
        out
    }

    #[test]
    fn pcap_micro_and_nano_both_byte_orders() {
        let pkts: &[(u64, &[u8], u32)] = &[
            (1_700_000_000_123_456_000, b"abc", 3),
            (1_700_000_001_000_001_000, b"de", 60),
        ];
        for nanos in [false, true] {
            let le = pcap(nanos, pkts);
            for file in [le.clone(), to_big_endian(&le)] {
                let (seen, err) = read_all(&file);
                assert_eq!(err, None);
                assert_eq!(
                    seen,
                    vec![
                        Ok((1_700_000_000_123_456_000, 1, b"abc".to_vec(), 3)),
                        Ok((1_700_000_001_000_001_000, 1, b"de".to_vec(), 60)),
                    ]
                );
            }
        }
        let ns = pcap(true, &[(1_000_000_007, b"x", 1)]);
        assert_eq!(
            read_all(&ns).0,
            vec![Ok((1_000_000_007, 1, b"x".to_vec(), 1))]
        );
    }

    #[test]
    fn wrong_magic_and_empty_input() {
        assert_eq!(
            read_all(b"GIF89a....").1.unwrap(),
            "byte 0: not a pcap or pcapng capture (starts with 47 49 46 38)"
        );
        assert_eq!(
            read_all(b"").1.unwrap(),
            "byte 0: empty input, not a capture"
        );
        assert_eq!(
            read_all(b"\xd4\xc3").1.unwrap(),
            "byte 0: not a pcap or pcapng capture (starts with d4 c3 00 00)"
        );
    }

    #[test]
    fn truncated_global_header() {
        let f = pcap(false, &[]);
        assert_eq!(
            read_all(&f[..20]).1.unwrap(),
            "byte 0: truncated pcap file header: needs 24 bytes, only 20 left in the input"
        );
    }

    #[test]
    fn truncated_last_packet_keeps_earlier_ones() {
        let f = pcap(
            false,
            &[(1_000, b"first", 5), (2_000, b"second-packet", 13)],
        );
        let (seen, err) = read_all(&f[..f.len() - 4]);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            err.unwrap(),
            "byte 45: truncated pcap packet data: needs 29 bytes, only 25 left in the input"
        );
        let (seen, err) = read_all(&f[..24 + 21 + 7]);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            err.unwrap(),
            "byte 45: truncated pcap record header: needs 16 bytes, only 7 left in the input"
        );
    }

    #[test]
    fn caplen_above_snaplen_is_read_absurd_caplen_is_damage() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 64, false).unwrap();
        w.packet(FrameTime::ZERO, &[7u8; 100], 100).unwrap();
        let f = w.into_inner();
        let (seen, err) = read_all(&f);
        assert_eq!((seen.len(), err), (1, None));

        let mut f = pcap(false, &[(0, b"abcd", 4)]);
        f[24 + 8..24 + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        assert_eq!(
            read_all(&f).1.unwrap(),
            "byte 32: packet length 2147418112 exceeds the largest snapshot length (262144); the capture is corrupt"
        );
    }

    #[test]
    fn a_huge_snaplen_in_the_header_does_not_raise_the_record_limit() {
        // Found by the capture_file fuzz target: snaplen 2^32-1 let a record claim 4 GiB.
        let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, u32::MAX, false).unwrap();
        w.packet(FrameTime::ZERO, b"ok", 2).unwrap();
        let mut f = w.into_inner();
        let rec = f.len();
        f.extend_from_slice(&[0u8; 8]);
        f.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        f.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        let (seen, err) = read_all(&f);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            err.unwrap(),
            format!(
                "byte {}: packet length 4294967280 exceeds the largest snapshot length (262144); the capture is corrupt",
                rec + 8
            )
        );
    }

    #[test]
    fn zero_length_and_inconsistent_records_are_skipped() {
        let f = pcap(false, &[(0, b"", 0), (1000, b"abcd", 2), (2000, b"ok", 2)]);
        let (seen, err) = read_all(&f);
        assert_eq!(err, None);
        assert_eq!(
            seen,
            vec![
                Err(SkippedRecord::Empty),
                Err(SkippedRecord::Inconsistent),
                Ok((2000, 1, b"ok".to_vec(), 2))
            ]
        );
    }

    #[test]
    fn pcapng_interfaces_link_types_and_packet_blocks() {
        for be in [false, true] {
            let mut w = PcapNgWriter::new(Vec::new(), be).unwrap();
            w.interface(LinkType::ETHERNET, 65535, 6).unwrap();
            w.interface(LinkType::LINUX_SLL2, 65535, 9).unwrap();
            w.raw_block(0x0000_0005, &[0u8; 8]).unwrap(); // interface statistics: skipped
            w.enhanced(0, 1_500_000, b"eth", 3).unwrap();
            w.enhanced(1, 2_000_000_007, b"sll2!", 9).unwrap();
            w.simple(b"simple", 6).unwrap();
            w.enhanced(7, 0, b"nobody", 6).unwrap();
            // A new section forgets the interfaces.
            w.section().unwrap();
            w.interface(LinkType::RAW, 4, 6).unwrap();
            w.simple(b"truncated-by-snaplen", 20).unwrap();
            let (seen, err) = read_all(&w.into_inner());
            assert_eq!(err, None);
            assert_eq!(
                seen,
                vec![
                    Ok((1_500_000_000, 1, b"eth".to_vec(), 3)),
                    Ok((2_000_000_007, 276, b"sll2!".to_vec(), 9)),
                    Ok((2_000_000_007, 1, b"simple".to_vec(), 6)),
                    Err(SkippedRecord::UnknownInterface),
                    Ok((2_000_000_007, 101, b"trun".to_vec(), 20)),
                ],
                "big endian: {be}"
            );
        }
    }

    #[test]
    fn pcapng_damage_is_located() {
        let mut w = PcapNgWriter::new(Vec::new(), false).unwrap();
        w.interface(LinkType::ETHERNET, 65535, 6).unwrap();
        w.enhanced(0, 1, b"packet", 6).unwrap();
        let good = w.into_inner();
        // Trailing length differs from the leading one.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 4] ^= 0x10;
        let (seen, err) = read_all(&bad);
        assert!(seen.is_empty());
        assert_eq!(
            err.unwrap(),
            format!(
                "byte {}: pcapng block length 40 does not match its trailing copy 56",
                n - 4
            )
        );
        // Block length not a multiple of four.
        let mut bad = good.clone();
        bad[28 + 32 + 4] = 37;
        let e = read_all(&bad).1.unwrap();
        assert!(e.ends_with("invalid pcapng block length 37"), "{e}");
        // Cut inside the packet block.
        let e = read_all(&good[..good.len() - 3]).1.unwrap();
        assert!(
            e.contains("truncated pcapng block: needs 40 bytes, only 37 left"),
            "{e}"
        );
    }
}
