//! Reading plugin files. The plugins folder is input too: a huge file, a
//! link to `/dev/zero`, or a FIFO that blocks whoever opens it must cost
//! nothing. So a file is loaded only if it is a regular file no larger than
//! `plugins.max_file_bytes` (checked before reading, and again on the open
//! handle, which is opened non-blocking), and each version of a file — its
//! size, modification time and inode — is tried once.

use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

use super::LoadError;

/// One version of a file, as `stat` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    dev: u64,
    ino: u64,
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The file's current version, or none when it is gone.
///
/// # Errors
/// It cannot be examined.
pub(crate) fn stamp(path: &Path) -> Result<Option<Stamp>, LoadError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(Stamp::of(&meta))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LoadError::Read(e)),
    }
}

/// Reads a plugin file.
///
/// # Errors
/// Not a regular file, larger than `max`, or unreadable.
pub(crate) fn read(path: &Path, max: u64) -> Result<Vec<u8>, LoadError> {
    check(&std::fs::metadata(path)?, max)?;
    // Non-blocking, so a file swapped for a FIFO after the check cannot
    // wedge the loader; the open handle is checked again.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    check(&file.metadata()?, max)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(LoadError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

fn check(meta: &Metadata, max: u64) -> Result<(), LoadError> {
    if !meta.is_file() {
        return Err(LoadError::NotRegular);
    }
    if meta.len() > max {
        return Err(LoadError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let ok = dir.path().join("ok.wasm");
        std::fs::write(&ok, b"abc").expect("write");
        assert_eq!(read(&ok, 3).expect("read"), b"abc");
        assert!(matches!(
            read(&ok, 2),
            Err(LoadError::TooLarge { size: 3, max: 2 })
        ));
        let zero = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
        assert!(matches!(read(&zero, 1 << 30), Err(LoadError::NotRegular)));
        let before = stamp(&ok).expect("stat").expect("exists");
        assert_eq!(stamp(&ok).expect("stat"), Some(before.clone()));
        std::fs::write(&ok, b"abcd").expect("rewrite");
        assert_ne!(stamp(&ok).expect("stat"), Some(before));
        assert_eq!(stamp(&dir.path().join("gone.wasm")).expect("stat"), None);
    }
}
