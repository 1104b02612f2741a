//! `multipath`: multipath-tools' command, on mpathd's code.

fn main() -> std::process::ExitCode {
    mpathd::multipath::main()
}
