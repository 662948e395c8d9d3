fn main() -> std::process::ExitCode {
    pinline::cli::main()
}
