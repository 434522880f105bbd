//! The inline proxy's benchmark: `benches/proxy.sh` (1 GiB RETR direct, through
//! ftpwatch proxy, Debian's ftp-proxy and ProFTPD mod_proxy; 500 concurrent sessions;
//! memory per idle session), run on the binary cargo built for this benchmark.
//! Needs root (network namespaces) and Debian's vsftpd, ftp-proxy and proftpd-mod-proxy,
//! which the script installs. Run: `cargo bench --bench proxy`.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; there are no benchmark names to filter on.
    let root = env!("CARGO_MANIFEST_DIR");
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !is_root {
        eprintln!("bench proxy: needs root (network namespaces); skipped");
        return ExitCode::SUCCESS;
    }
    let status = Command::new(format!("{root}/benches/proxy.sh"))
        .arg(env!("CARGO_BIN_EXE_ftpwatch"))
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("bench proxy: benches/proxy.sh failed ({s})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench proxy: cannot run benches/proxy.sh: {e}");
            ExitCode::FAILURE
        }
    }
}
