//! The `ftpwatch` command: `read` (capture files), `live` (interfaces, metrics over
//! HTTP) and `explain`, on top of the library's pipeline.

mod cli;
mod explain;
mod live;
mod logfile;
mod proxy_cli;
mod read;

fn main() -> std::process::ExitCode {
    cli::main()
}
