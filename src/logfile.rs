//! Where the live event log goes: a file (mode 0640, appended, reopened on SIGHUP for
//! logrotate), standard output, or nowhere.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub enum LogTarget {
    None,
    Stdout(io::Stdout),
    File { path: PathBuf, file: File },
}

fn open(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

impl LogTarget {
    /// `-` for standard output, or a path.
    pub fn open(spec: Option<&str>) -> io::Result<Self> {
        match spec {
            None => Ok(LogTarget::None),
            Some("-") => Ok(LogTarget::Stdout(io::stdout())),
            Some(p) => {
                let path = PathBuf::from(p);
                let file = open(&path)?;
                Ok(LogTarget::File { path, file })
            }
        }
    }

    /// Open the path again (after logrotate moved the file away).
    pub fn reopen(&mut self) -> io::Result<()> {
        if let LogTarget::File { path, file } = self {
            *file = open(path)?;
        }
        Ok(())
    }
}

impl Write for LogTarget {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LogTarget::None => Ok(buf.len()),
            LogTarget::Stdout(s) => s.write(buf),
            LogTarget::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LogTarget::None => Ok(()),
            LogTarget::Stdout(s) => s.flush(),
            LogTarget::File { file, .. } => file.flush(),
        }
    }
}
