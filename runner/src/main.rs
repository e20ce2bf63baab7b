fn main() -> std::process::ExitCode {
    lethe::cli::run()
}
