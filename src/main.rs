fn main() -> std::process::ExitCode {
    ftpwatch::cli::main()
}
