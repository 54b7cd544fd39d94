//! Zips opened with their claims checked: the central directory's entry count and total
//! unpacked size against the limits before anything is read, and every read capped by what is
//! left of the budget, so a header that lies about sizes still cannot get past.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::{ExtractError, Limits};

pub(crate) struct SafeZip {
    archive: zip::ZipArchive<File>,
    left: u64,
    max: u64,
}

impl SafeZip {
    pub fn open(path: &Path, limits: &Limits, format: &'static str) -> Result<Self, ExtractError> {
        let archive = zip::ZipArchive::new(File::open(path)?)
            .map_err(|e| ExtractError::corrupt(format, e))?;
        if archive.len() > limits.max_zip_entries {
            return Err(ExtractError::TooManyEntries {
                entries: archive.len(),
                max: limits.max_zip_entries,
            });
        }
        let mut archive = archive;
        let mut total: u64 = 0;
        for i in 0..archive.len() {
            let size = archive
                .by_index_raw(i)
                .map_err(|e| ExtractError::corrupt(format, e))?
                .size();
            total = total.saturating_add(size);
        }
        let bomb = ExtractError::Bomb {
            max_mib: limits.max_unpacked_bytes >> 20,
        };
        if total > limits.max_unpacked_bytes {
            return Err(bomb);
        }
        Ok(SafeZip {
            archive,
            left: limits.max_unpacked_bytes,
            max: limits.max_unpacked_bytes,
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.archive.file_names().map(str::to_owned).collect()
    }

    /// The entry's bytes, or `None` when there is no such entry.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let entry = match self.archive.by_name(name) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(ExtractError::corrupt("zip", e)),
        };
        let mut buf = Vec::new();
        entry
            .take(self.left + 1)
            .read_to_end(&mut buf)
            .map_err(|e| inflate_error("zip", e))?;
        if buf.len() as u64 > self.left {
            return Err(ExtractError::Bomb {
                max_mib: self.max >> 20,
            });
        }
        self.left -= buf.len() as u64;
        Ok(Some(buf))
    }

    pub fn read_string(&mut self, name: &str) -> Result<Option<String>, ExtractError> {
        Ok(self
            .read(name)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }
}

/// The checks for readers (calamine) that open the zip themselves and read it uncapped: the
/// claims, then every entry inflated into nothing under the budget, because a zip whose
/// headers lie about sizes passes the claims and calamine would inflate all of it.
pub(crate) fn check(
    path: &Path,
    limits: &Limits,
    format: &'static str,
) -> Result<(), ExtractError> {
    let mut zip = SafeZip::open(path, limits, format)?;
    for i in 0..zip.archive.len() {
        let entry = zip
            .archive
            .by_index(i)
            .map_err(|e| ExtractError::corrupt(format, e))?;
        let read = std::io::copy(&mut entry.take(zip.left + 1), &mut std::io::sink())
            .map_err(|e| inflate_error(format, e))?;
        if read > zip.left {
            return Err(ExtractError::Bomb {
                max_mib: zip.max >> 20,
            });
        }
        zip.left -= read;
    }
    Ok(())
}

/// A damaged stream (bad deflate data, a checksum that does not match) is the file's fault;
/// anything else is the disk's.
fn inflate_error(format: &'static str, e: std::io::Error) -> ExtractError {
    if e.kind() == std::io::ErrorKind::InvalidData {
        ExtractError::corrupt(format, e)
    } else {
        ExtractError::Io(e)
    }
}
