//! The agent's build has no repository, IdP client or facade in its tree: it never holds
//! a Graph credential or a database URL.

#[test]
fn no_server_side_crates_in_the_agent_tree() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "keysmith-agent",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(tree.lines().count() > 10, "{tree}");
    for forbidden in [
        "lifecycle",
        "rusqlite",
        "postgres",
        "tokio-postgres",
        "entra-graph",
        "keysmith-facade",
        "libsqlite3-sys",
    ] {
        let hit = tree
            .lines()
            .find(|l| l.split(' ').next() == Some(forbidden));
        assert!(hit.is_none(), "{forbidden} is in the agent's tree: {hit:?}");
    }
}
