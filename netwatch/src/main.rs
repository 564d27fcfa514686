fn main() -> std::process::ExitCode {
    netwatch::main()
}
