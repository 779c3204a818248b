//! Rebuilds Parlor when a page is added to or removed from `static/`: the
//! pages are built into the binary (see `http.rs`), and rust-embed's
//! `include_bytes!` only notices changes to the files it already holds.

fn main() {
    println!("cargo:rerun-if-changed=static");
}
