//! `faultline-node`: one server binary, one subcommand per protocol.

fn main() {
    eprintln!("faultline-node: no protocol subcommands yet");
    std::process::exit(64);
}
