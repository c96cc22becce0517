//! The keysmith command-line tool (work in progress).

fn main() {
    eprintln!("keysmith: the lifecycle commands are not built yet; see README.md");
    std::process::exit(2);
}
