//! An image's width and height read from its header, without decoding it: a few hundred bytes
//! of PNG can claim 60000×60000 pixels, which a decoder would try to allocate (14 GB of RGBA)
//! before finding the data missing. Hand-written for the formats the workers' decoders take
//! (PNG, JPEG, GIF, BMP, WebP) to keep the check free of a decoding library.
//!
//! The swapper checks with it before a request reaches a worker, and the llama.cpp worker again
//! before llama.cpp decodes, so the gate and the worker agree.

/// The most pixels an image may have: 32 megapixels (a 7000×4500 photo; vision projectors
/// downscale to well under 1 megapixel anyway).
pub const MAX_IMAGE_PIXELS: u64 = 32_000_000;

/// The most images one chat request may carry.
pub const MAX_IMAGES_PER_REQUEST: usize = 8;

/// What an image's header says about its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Width and height in pixels.
    Size(u64, u64),
    /// The bytes end before the dimensions: nothing a decoder could allocate for either.
    Truncated,
    /// A header not understood (an unknown format, a malformed JPEG segment).
    Unreadable,
}

/// Why an image may not be decoded, or `None` when it may.
pub fn refusal(bytes: &[u8]) -> Option<String> {
    match dimensions(bytes) {
        Header::Size(width, height) if width.saturating_mul(height) > MAX_IMAGE_PIXELS => {
            Some(format!(
                "the image is {width}x{height} pixels; the limit is {} megapixels",
                MAX_IMAGE_PIXELS / 1_000_000
            ))
        }
        Header::Size(..) | Header::Truncated => None,
        Header::Unreadable => Some("the image cannot be decoded: its header cannot be read".into()),
    }
}

pub fn dimensions(bytes: &[u8]) -> Header {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => png(bytes),
        [0xFF, 0xD8, 0xFF, ..] => jpeg(bytes),
        [b'G', b'I', b'F', b'8', ..] => at(bytes, 10, |b| (le16(b, 6), le16(b, 8))),
        [b'B', b'M', ..] => bmp(bytes),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => webp(bytes),
        _ => Header::Unreadable,
    }
}

/// The size read by `read` once `bytes` holds `len` of them.
fn at(bytes: &[u8], len: usize, read: impl Fn(&[u8]) -> (u64, u64)) -> Header {
    if bytes.len() < len {
        return Header::Truncated;
    }
    let (width, height) = read(bytes);
    Header::Size(width, height)
}

fn le16(b: &[u8], i: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn be16(b: &[u8], i: usize) -> u64 {
    u64::from(u16::from_be_bytes([b[i], b[i + 1]]))
}

fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn be32(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
}

fn le24(b: &[u8], i: usize) -> u64 {
    u64::from(b[i]) | u64::from(b[i + 1]) << 8 | u64::from(b[i + 2]) << 16
}

/// The first chunk is IHDR: width and height, big-endian.
fn png(b: &[u8]) -> Header {
    if b.len() >= 16 && &b[12..16] != b"IHDR" {
        return Header::Unreadable;
    }
    at(b, 24, |b| (be32(b, 16), be32(b, 20)))
}

/// The DIB header: 16-bit sizes in the old OS/2 one, signed 32-bit (negative: top-down) after.
fn bmp(b: &[u8]) -> Header {
    if b.len() < 18 {
        return Header::Truncated;
    }
    if le32(b, 14) == 12 {
        return at(b, 22, |b| (le16(b, 18), le16(b, 20)));
    }
    at(b, 26, |b| {
        let signed = |i| u64::from((le32(b, i) as i32).unsigned_abs());
        (signed(18), signed(22))
    })
}

/// Segments up to the first start-of-frame (SOF0–SOF15 but DHT, JPG and DAC), which holds the
/// size.
fn jpeg(b: &[u8]) -> Header {
    let mut i = 2;
    loop {
        if i + 4 > b.len() {
            return Header::Truncated;
        }
        if b[i] != 0xFF {
            return Header::Unreadable;
        }
        let marker = b[i + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => i += 1,
            0x01 | 0xD0..=0xD7 => i += 2,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return at(&b[i..], 9, |s| (be16(s, 7), be16(s, 5)));
            }
            // Image data before any frame header, or its end.
            0xD9 | 0xDA => return Header::Unreadable,
            _ => i += 2 + be16(b, i + 2) as usize,
        }
    }
}

/// The first chunk: lossy (`VP8 `), lossless (`VP8L`) or extended (`VP8X`, the canvas).
fn webp(b: &[u8]) -> Header {
    if b.len() < 16 {
        return Header::Truncated;
    }
    match &b[12..16] {
        b"VP8 " => at(b, 30, |b| (le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF)),
        b"VP8L" => at(b, 25, |b| {
            let bits = u64::from(le32(b, 21));
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }),
        b"VP8X" => at(b, 30, |b| (le24(b, 24) + 1, le24(b, 27) + 1)),
        _ => Header::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
        out.extend(b"IHDR");
        out.extend(width.to_be_bytes());
        out.extend(height.to_be_bytes());
        out.extend([8, 6, 0, 0, 0]);
        out
    }

    #[test]
    fn sizes_come_from_every_format_header() {
        assert_eq!(dimensions(&png(640, 480)), Header::Size(640, 480));
        let mut gif = b"GIF89a".to_vec();
        gif.extend([0x80, 0x02, 0xE0, 0x01]);
        assert_eq!(dimensions(&gif), Header::Size(640, 480));
        let mut bmp = b"BM".to_vec();
        bmp.extend([0; 12]);
        bmp.extend(40u32.to_le_bytes());
        bmp.extend(640i32.to_le_bytes());
        bmp.extend((-480i32).to_le_bytes());
        assert_eq!(dimensions(&bmp), Header::Size(640, 480));
        // SOI, an APP0 segment of 4 bytes, then SOF2 (progressive).
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC2, 0, 17, 8, 0x01, 0xE0, 0x02, 0x80,
        ];
        assert_eq!(dimensions(&jpeg), Header::Size(640, 480));
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        vp8x.extend([0; 8]);
        vp8x.extend([0x7F, 0x02, 0x00, 0xDF, 0x01, 0x00]);
        assert_eq!(dimensions(&vp8x), Header::Size(640, 480));
        let mut vp8l = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2F".to_vec();
        vp8l.extend(((639u32) | (479u32 << 14)).to_le_bytes());
        assert_eq!(dimensions(&vp8l), Header::Size(640, 480));
    }

    #[test]
    fn a_bomb_is_refused_and_a_photo_is_not() {
        let bomb = refusal(&png(60_000, 60_000)).unwrap();
        assert_eq!(
            bomb,
            "the image is 60000x60000 pixels; the limit is 32 megapixels"
        );
        assert_eq!(refusal(&png(7000, 4500)), None);
        assert!(refusal(&png(8000, 4001)).is_some());
        assert_eq!(refusal(b"BM"), None, "too short to decode either");
        assert!(refusal(b"not an image at all").is_some());
        assert!(refusal(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 0, 0]).is_some());
    }
}
