//! Link the binaries as position-dependent executables on Linux (issue
//! #16): a PIE is relocated by the loader at every start (about 15,000
//! relocations and 60 copied pages for `faultline`), a fixed-address
//! executable not at all. The code is still compiled position-independent,
//! so only the final link changes: no crate is rebuilt for it, and test
//! binaries are linked as before. BENCHMARKS.md, "Start-up", has the figures.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // GCC and Clang drivers take `-no-pie` after rustc's `-pie`; the last
    // one wins. musl builds are static already.
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
