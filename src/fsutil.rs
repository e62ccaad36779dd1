//! Files, safely. Writing: atomic replacement (write a temp file in the target's directory,
//! fsync it, rename it over the target, fsync the directory), so a reader sees the old file or
//! the new one, never a torn one, and a crash loses at most the new content.
//!
//! Reading inputs ([`open_regular`], [`read_regular`]): only regular files are read, and only up
//! to a size the caller names. A FIFO, socket or device at an input path would otherwise block
//! `open()` or `read()` forever (a service stuck there ignores its watchdog and SIGTERM), and
//! `/dev/zero` or a huge stray file would exhaust memory. The file is opened with `O_NONBLOCK`
//! so that opening a FIFO returns at once, then judged by `fstat` on the opened descriptor (no
//! window between the check and the read for the path to be swapped).
//!
//! [`excerpt`] quotes a fragment of an input in an error message, bounded in length: a message
//! never echoes a whole input line (a 10 MB header, a 1 GB line of zeros).

use std::fs::{self, File, FileType, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Replace `path` atomically with whatever `write` produces.
pub fn write_atomic<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let dir = parent_dir(path);
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp_path = dir.join(temp_name);

    let result = (|| {
        let mut file = File::create(&temp_path)?;
        {
            let mut buffered = io::BufWriter::new(&mut file);
            write(&mut buffered)?;
            buffered.flush()?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    result
}

/// Replace `path` atomically with `bytes`.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// At most this many bytes of an input are quoted in an error message (see [`excerpt`]).
pub const EXCERPT_BYTES: usize = 200;

/// Why an input file could not be read. Every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {}: {error}; check the path and that avwap may read it", path.display())]
    Open { path: PathBuf, error: io::Error },
    #[error("{} is {kind}, not a regular file; avwap reads its inputs only from regular files (a pipe or device could block it forever): replace it with the file itself", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is {size} bytes, more than the {limit} bytes accepted for {what}; {hint}", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
        what: &'static str,
        hint: &'static str,
    },
    #[error("cannot read {}: {error}; check that the file is complete and readable", path.display())]
    Read { path: PathBuf, error: io::Error },
}

impl ReadError {
    /// The path does not exist (a caller may treat that as "missing" rather than "broken").
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Open { error, .. } if error.kind() == io::ErrorKind::NotFound)
    }
}

/// What a byte limit protects and what to tell the operator when it is exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    pub bytes: u64,
    /// What kind of input this is, e.g. "a watchlist".
    pub what: &'static str,
    /// What to do about a file over the limit.
    pub hint: &'static str,
}

/// "a FIFO (named pipe)", "a directory", … for a file type that is not a regular file.
pub fn kind_of(file_type: &FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading if, and only if, it is a regular file; return it with its
/// metadata (from `fstat` on the opened descriptor). Never blocks on a FIFO or device.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    // O_NONBLOCK: opening the read end of a FIFO otherwise waits for a writer. O_NOCTTY: a
    // terminal device must not become our controlling terminal. On a regular file O_NONBLOCK
    // changes nothing (Linux reads of regular files never return EAGAIN; mandatory locking,
    // the one exception, was removed in Linux 5.15), so it is not cleared after the check.
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(error) => {
            // A socket cannot be opened at all (ENXIO, "No such device or address"): say
            // what the path is instead.
            if let Ok(metadata) = fs::metadata(path) {
                if !metadata.is_file() {
                    return Err(ReadError::NotRegular {
                        path: path.to_path_buf(),
                        kind: kind_of(&metadata.file_type()),
                    });
                }
            }
            return Err(ReadError::Open {
                path: path.to_path_buf(),
                error,
            });
        }
    };
    let metadata = file.metadata().map_err(|error| ReadError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&metadata.file_type()),
        });
    }
    Ok((file, metadata))
}

/// The whole content of the regular file `path`, refused when it is over `limit` (judged by
/// its size before reading, and again while reading in case it grows).
pub fn read_regular(path: &Path, limit: SizeLimit) -> Result<Vec<u8>, ReadError> {
    let (file, metadata) = open_regular(path)?;
    read_opened(path, file, &metadata, limit)
}

/// [`read_regular`] for a file already opened with [`open_regular`].
pub fn read_opened(
    path: &Path,
    file: File,
    metadata: &Metadata,
    limit: SizeLimit,
) -> Result<Vec<u8>, ReadError> {
    let too_large = |size: u64| ReadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: limit.bytes,
        what: limit.what,
        hint: limit.hint,
    };
    if metadata.len() > limit.bytes {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(limit.bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| ReadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
    if bytes.len() as u64 > limit.bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// `text` quoted for an error message (Rust string escapes), cut after about
/// [`EXCERPT_BYTES`] bytes of output with the full length noted, so a message never carries a
/// whole (possibly huge, possibly binary) input.
pub fn excerpt(text: &str) -> String {
    quote(text, text.len(), false)
}

/// [`excerpt`] of bytes that may not be UTF-8 (invalid sequences shown as U+FFFD). Only the
/// quoted prefix is decoded.
pub fn excerpt_bytes(bytes: &[u8]) -> String {
    // An escaped character takes at least one output byte per input byte, so this prefix
    // always fills the excerpt.
    let head = &bytes[..bytes.len().min(EXCERPT_BYTES * 4)];
    quote(
        &String::from_utf8_lossy(head),
        bytes.len(),
        head.len() < bytes.len(),
    )
}

fn quote(text: &str, total: usize, more: bool) -> String {
    // The prefix whose escaped form fits; `char::escape_debug` is never shorter than what
    // `{:?}` writes for a character, so the quoted prefix fits too.
    let mut budget = EXCERPT_BYTES;
    let mut end = text.len();
    for (at, c) in text.char_indices() {
        let width = c.escape_debug().len();
        if width > budget {
            end = at;
            break;
        }
        budget -= width;
    }
    let mut out = format!("{:?}", &text[..end]);
    if more || end < text.len() {
        out.push_str(&format!("… ({total} bytes in all)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_bytes_atomic(&path, b"first").unwrap();
        write_bytes_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    const LIMIT: SizeLimit = SizeLimit {
        bytes: 16,
        what: "a test input",
        hint: "use a smaller one",
    };

    /// A FIFO at `path`, made by coreutils' mkfifo (no unsafe libc call in tests).
    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo (coreutils) is needed for this test");
        assert!(status.success(), "mkfifo {}", path.display());
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.csv");
        mkfifo(&path);
        let started = std::time::Instant::now();
        let err = read_regular(&path, LIMIT).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(matches!(err, ReadError::NotRegular { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("is a FIFO (named pipe), not a regular file"),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn directories_devices_and_sockets_are_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        for (path, kind) in [
            (dir.path().to_path_buf(), "a directory"),
            (PathBuf::from("/dev/null"), "a character device"),
            (PathBuf::from("/dev/zero"), "a character device"),
            (socket, "a socket"),
        ] {
            match read_regular(&path, LIMIT) {
                Err(ReadError::NotRegular { kind: found, .. }) => {
                    assert_eq!(found, kind, "{}", path.display())
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }

    #[test]
    fn missing_file_is_an_open_error_that_says_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular(&dir.path().join("nope"), LIMIT).unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert!(err.to_string().starts_with("cannot open "), "{err}");
    }

    #[test]
    fn size_limit_is_enforced_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        fs::write(&path, [b'x'; 16]).unwrap();
        assert_eq!(read_regular(&path, LIMIT).unwrap().len(), 16);
        fs::write(&path, [b'x'; 17]).unwrap();
        let err = read_regular(&path, LIMIT).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is 17 bytes, more than the 16 bytes accepted for a test input; use a smaller one",
                path.display()
            )
        );
    }

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        assert_eq!(excerpt("a\u{0}b"), "\"a\\0b\"");
        let long = "0".repeat(10_000_000);
        let quoted = excerpt(&long);
        assert!(quoted.len() < EXCERPT_BYTES + 40, "{}", quoted.len());
        assert!(quoted.ends_with("… (10000000 bytes in all)"), "{quoted}");
        let binary = vec![0u8; 1 << 20];
        let quoted = excerpt_bytes(&binary);
        assert!(quoted.len() < EXCERPT_BYTES + 40, "{}", quoted.len());
        assert!(quoted.ends_with("(1048576 bytes in all)"), "{quoted}");
        assert_eq!(excerpt_bytes(b"ok"), "\"ok\"");
        // Multi-byte characters are never split.
        let euros = "€".repeat(1000);
        assert!(excerpt(&euros).starts_with("\"€€"));
    }

    #[test]
    fn failed_write_keeps_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_bytes_atomic(&path, b"good").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
