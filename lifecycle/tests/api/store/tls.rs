//! PostgreSQL over TLS against a real server the test starts: `initdb` in a temp folder,
//! `ssl=on` with a server certificate from a CA the test makes (rcgen), and a
//! `pg_hba.conf` that rejects any connection without TLS.
//!
//! Needs the PostgreSQL server binaries (`/usr/lib/postgresql/*/bin`, installed by
//! `.ci/run` / `scripts/pg-start.sh`). As root the server runs as the `postgres` user
//! (`runuser`), as PostgreSQL refuses root. Without the binaries the test prints
//! SKIPPED, unless `CI` is set, where it fails.

use lifecycle::store::{PgOptions, PgStore, StoreError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA: its certificate (PEM) and the issuer that signs with it.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// A server certificate for `names` (DNS names or IP addresses): (cert PEM, key PEM).
    fn server(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "keysmith test db");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn bindir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The server's owner when we are root: `postgres` (uid, gid).
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "no 'postgres' user to run the server as"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// A running server, stopped and removed on drop.
struct Server {
    dir: PathBuf,
    bin: PathBuf,
    root: bool,
    port: u16,
    password: String,
}

impl Server {
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start(bin: PathBuf, ca: &Ca) -> Server {
        let root = is_root();
        let dir = std::env::temp_dir().join(format!(
            "ks-pgtls-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let server = Server {
            dir: dir.clone(),
            bin,
            root,
            port,
            password: "tls-test-pw".into(),
        };
        let (cert, key) = ca.server(&["localhost", "pg.keysmith.test", "127.0.0.1"]);
        std::fs::write(dir.join("server.crt"), cert).unwrap();
        std::fs::write(dir.join("server.key"), key).unwrap();
        std::fs::write(dir.join("pw"), &server.password).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        if root {
            let (uid, gid) = postgres_user();
            for f in ["", "server.crt", "server.key", "pw"] {
                std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid)).unwrap();
            }
            // The server's owner must reach the folder.
            let mut p = dir.clone();
            while let Some(parent) = p.parent().map(Path::to_path_buf) {
                let mode = std::fs::metadata(&parent).unwrap().permissions().mode();
                let _ = std::fs::set_permissions(
                    &parent,
                    std::fs::Permissions::from_mode(mode | 0o001),
                );
                p = parent;
            }
        }
        let data = dir.join("data");
        let out = server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "keysmith",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", dir.join("pw").display()))
            .args(["-E", "UTF8", "--locale=C"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        // TLS or nothing: a connection without TLS is rejected by the server itself.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let opts = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on \
             -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
            dir = dir.display()
        );
        let out = server
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {out:?}\n{}",
            std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
        );
        server
    }

    fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgresql://keysmith:{}@{host}:{}/postgres?{query}",
            self.password, self.port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn expect_tls_refusal(r: Result<PgStore, StoreError>, what: &str) -> String {
    match r {
        Err(StoreError::Tls { reason }) => reason,
        Err(other) => panic!("{what}: expected a TLS refusal, got {other:?}"),
        Ok(_) => panic!("{what}: connected"),
    }
}

#[test]
fn postgres_tls_verifies_the_server_and_refuses_plaintext() {
    let Some(bin) = bindir() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but no PostgreSQL server binaries under /usr/lib/postgresql"
        );
        eprintln!("SKIPPED: PostgreSQL TLS test (no /usr/lib/postgresql/*/bin/initdb)");
        return;
    };
    let ca = Ca::new("keysmith test CA");
    let server = Server::start(bin, &ca);
    let files = server.dir.join("client");
    std::fs::create_dir_all(&files).unwrap();
    let ca_file = files.join("ca.pem");
    std::fs::write(&ca_file, ca.issuer.pem()).unwrap();
    let wrong_ca_file = files.join("wrong-ca.pem");
    std::fs::write(&wrong_ca_file, Ca::new("someone else's CA").issuer.pem()).unwrap();
    let with_ca = |f: &Path| PgOptions {
        schema: Some("tls_test".into()),
        root_cert: Some(f.to_path_buf()),
    };

    // The right CA, verify-full by name: connects (over TLS: the server rejects anything
    // else) and migrates.
    let url = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca_file.display()),
    );
    let store = PgStore::connect_with(&url, &PgOptions::default()).expect("verify-full, right CA");
    assert!(format!("{store:?}").contains("verify-full"));
    drop(store);

    // A host that is not loopback by name (its address given by hostaddr) gets
    // verify-full without asking; the CA from the options.
    let remote = format!(
        "postgresql://keysmith:{}@pg.keysmith.test:{}/postgres?hostaddr=127.0.0.1",
        server.password, server.port
    );
    let store = PgStore::connect_with(&remote, &with_ca(&ca_file)).expect("default verify-full");
    assert!(format!("{store:?}").contains("verify-full"));
    lifecycle::store::Store::check_integrity(&store).unwrap();
    drop(store);

    // The wrong CA: refused, typed.
    let reason = expect_tls_refusal(
        PgStore::connect_with(&remote, &with_ca(&wrong_ca_file)),
        "wrong CA",
    );
    assert!(reason.to_lowercase().contains("issuer"), "{reason}");
    // No CA given: the public roots do not know the test CA either.
    expect_tls_refusal(
        PgStore::connect_with(&remote, &PgOptions::default()),
        "public roots",
    );

    // A certificate for another name: verify-full refuses, verify-ca accepts.
    let other_name = format!(
        "postgresql://keysmith:{}@other.keysmith.test:{}/postgres?hostaddr=127.0.0.1",
        server.password, server.port
    );
    let reason = expect_tls_refusal(
        PgStore::connect_with(&other_name, &with_ca(&ca_file)),
        "name mismatch",
    );
    assert!(reason.to_lowercase().contains("name"), "{reason}");
    PgStore::connect_with(
        &format!("{other_name}&sslmode=verify-ca"),
        &with_ca(&ca_file),
    )
    .expect("verify-ca ignores the name");

    // Plaintext to that host: refused before anything is sent.
    match PgStore::connect_with(&format!("{remote}&sslmode=disable"), &with_ca(&ca_file)) {
        Err(StoreError::InsecureConnection { host, .. }) => assert_eq!(host, "pg.keysmith.test"),
        other => panic!("plaintext to a non-loopback host: {:?}", other.err()),
    }
    // Plaintext to loopback is allowed by keysmith, and this server refuses it.
    match PgStore::connect_with(
        &server.url("127.0.0.1", "sslmode=disable"),
        &PgOptions::default(),
    ) {
        Err(StoreError::Backend(m)) => assert!(m.contains("no encryption"), "{m}"),
        other => panic!("plaintext to a TLS-only server: {:?}", other.err()),
    }
}
