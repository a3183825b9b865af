//! Reading files named by users and manifests safely: only regular files
//! (never a FIFO, a device such as `/dev/zero`, a socket or a directory),
//! never more than a stated limit, and without blocking on open. Does I/O.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest manifest file read (64 MiB: a zone of 1,000,000 record sets
/// written as YAML is about 50 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// The largest zone file read (256 MiB: a 1,000,000-record zone file is about 40 MiB).
pub const MAX_ZONE_FILE_BYTES: u64 = 256 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such file or directory")]
    NotFound,
    #[error(
        "is {0}, not a regular file; only regular files are read (a FIFO or device could hang the process or never end)"
    )]
    NotRegular(&'static str),
    #[error("is {size} bytes; files larger than {limit} bytes are not read ({what})")]
    TooLarge {
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("is not UTF-8 text (at byte {0})")]
    NotUtf8(usize),
    #[error("cannot read: {0}")]
    Io(std::io::Error),
}

/// What kind of file the metadata describes, for error messages.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

/// Reads a regular file (following symlinks) of at most `limit` bytes as text.
///
/// The file is opened non-blocking, so a FIFO put in its place between the
/// check and the open cannot hang the process, and its type and size are
/// checked again on the open handle; the read stops at `limit` bytes whatever
/// the size said.
pub fn read_text(path: &Path, limit: u64, what: &'static str) -> Result<String, ReadError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound,
        _ => ReadError::Io(e),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(file_kind(&meta)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(file_kind(&meta)));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
            what,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
            what,
        });
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_others_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "kind: Tenant\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_text(&file, 100, "test").unwrap_or_else(|e| panic!("{e}")),
            "kind: Tenant\n"
        );
        for special in ["/dev/zero", "/dev/urandom", "/dev/null"] {
            let err = read_text(Path::new(special), 100, "test").unwrap_err();
            assert!(
                matches!(err, ReadError::NotRegular("a character device")),
                "{special}: {err}"
            );
        }
        let err = read_text(dir.path(), 100, "test").unwrap_err();
        assert!(matches!(err, ReadError::NotRegular("a directory")), "{err}");
        assert!(matches!(
            read_text(&dir.path().join("missing"), 100, "test"),
            Err(ReadError::NotFound)
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fifo = dir.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        assert!(made.success());
        let err = read_text(&fifo, 100, "test").unwrap_err();
        assert!(
            matches!(err, ReadError::NotRegular(k) if k.contains("FIFO")),
            "{err}"
        );
        // and through a symlink
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&fifo, &link).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read_text(&link, 100, "test"),
            Err(ReadError::NotRegular(_))
        ));
    }

    #[test]
    fn files_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("big.zone");
        std::fs::write(&file, vec![b'a'; 101]).unwrap_or_else(|e| panic!("{e}"));
        let err = read_text(&file, 100, "zone files").unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::TooLarge {
                    size: 101,
                    limit: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("larger than 100 bytes"), "{err}");
        std::fs::write(&file, [0xff, 0xfe, b'a']).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read_text(&file, 100, "test"),
            Err(ReadError::NotUtf8(0))
        ));
    }
}
