// The declarations in jobs/ (and tests/jobs/) are embedded with include_dir!, which
// does not tell cargo about files added later; this does.
fn main() {
    println!("cargo:rerun-if-changed=jobs");
    println!("cargo:rerun-if-changed=tests/jobs");
    println!("cargo:rerun-if-changed=migrations");
}
