//! The session endpoints' plumbing with a test-only handler, the per-agent and
//! per-source limits, body limit, media type, and the configuration's refusals. The
//! server runs in this process on loopback (plain HTTP, the test-only mode); the real
//! process with TLS is tested in bindings/cli/tests/serve.rs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keysmith_server::{Admission, Opened, ServerConfig, SessionError, SessionHandler};

struct Echo {
    opened: AtomicUsize,
}

impl SessionHandler for Echo {
    fn open(
        &self,
        body: &[u8],
        _now: u64,
        admission: &dyn Admission,
    ) -> Result<Opened, SessionError> {
        let agent = body
            .strip_prefix(b"hello:")
            .ok_or_else(|| SessionError::BadMessage("no hello".into()))?;
        if !admission.admit(&String::from_utf8_lossy(agent)) {
            return Err(SessionError::RateLimited);
        }
        let n = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Opened {
            session_id: format!("s-{n}"),
            reply: b"welcome".to_vec(),
        })
    }
    fn handle(&self, session_id: &str, body: &[u8], _now: u64) -> Result<Vec<u8>, SessionError> {
        if !session_id.starts_with("s-") {
            return Err(SessionError::UnknownSession);
        }
        match body {
            b"bad" => Err(SessionError::BadMessage("bad".into())),
            b"late" => Err(SessionError::Expired),
            b"replay" => Err(SessionError::Conflict("seq".into())),
            _ => Ok(body.iter().rev().copied().collect()),
        }
    }
}

fn config(dir: &std::path::Path, listen: &str, extra: &str) -> String {
    let session = dir.join("session.json");
    std::fs::write(
        &session,
        serde_json::json!({
            "repository": {"sqlite": dir.join("k.db")},
            "pin_key": "07".repeat(32),
        })
        .to_string(),
    )
    .unwrap();
    format!(
        "listen = \"{listen}\"\nsession_config = {session:?}\nserver_key = {key:?}\n{extra}\
         [oidc]\nissuer = \"http://127.0.0.1:9/t/v2.0\"\naudience = \"api://keysmith\"\n\
         jwks_url = \"http://127.0.0.1:9/keys\"\n\
         [limits]\nsessions_per_minute_per_agent = 2\nenrolments_per_minute_per_source = 3\n",
        key = dir.join("server-key.pem"),
    )
}

#[test]
fn config_refuses_plain_http_off_loopback_missing_tls_and_unknown_fields() {
    let dir = keysmith_testkit::TempDir::new("serve-config");
    let plain = "insecure_loopback_http = true\n";
    assert!(ServerConfig::from_toml(&config(&dir, "127.0.0.1:0", plain)).is_ok());
    let e = ServerConfig::from_toml(&config(&dir, "0.0.0.0:8443", plain)).unwrap_err();
    assert!(e.to_string().contains("not a loopback"), "{e}");
    let e = ServerConfig::from_toml(&config(&dir, "127.0.0.1:0", "")).unwrap_err();
    assert!(e.to_string().contains("tls"), "{e}");
    let e =
        ServerConfig::from_toml(&config(&dir, "127.0.0.1:0", "colour = \"blue\"\n")).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    assert_eq!(keysmith_server::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        keysmith_server::rfc3339(951_782_400_000),
        "2000-02-29T00:00:00Z"
    );
}

#[test]
fn sessions_carry_bytes_to_the_handler_within_limits() {
    let dir = keysmith_testkit::TempDir::new("serve-plumbing");
    keysmith_server::ServerKey::init(&dir.join("server-key.pem")).unwrap();
    let cfg = ServerConfig::from_toml(&config(
        &dir,
        "127.0.0.1:0",
        "insecure_loopback_http = true\n",
    ))
    .unwrap();
    let server = keysmith_server::Server::new(cfg)
        .unwrap()
        .with_sessions(Arc::new(Echo {
            opened: AtomicUsize::new(0),
        }));
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(server.serve(move |a| tx.send(a).unwrap(), async move {
            let _ = stop_rx.await;
        }))
        .unwrap();
    });
    let addr = rx.recv().unwrap();
    let base = format!("http://{addr}");
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        http.post(format!("{base}{path}"))
            .header("content-type", ct)
            .body(body)
            .send()
            .unwrap()
    };
    let cose = "application/cose";

    let r = post("/v1/sessions", cose, b"hello:agent-1".to_vec());
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["location"], "/v1/sessions/s-1");
    assert_eq!(r.headers()["content-type"], cose);
    assert_eq!(r.bytes().unwrap().as_ref(), b"welcome");
    let r = post("/v1/sessions/s-1", cose, b"abc".to_vec());
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().unwrap().as_ref(), b"cba");
    for (body, status) in [(&b"bad"[..], 400), (b"late", 410), (b"replay", 409)] {
        assert_eq!(
            post("/v1/sessions/s-1", cose, body.to_vec())
                .status()
                .as_u16(),
            status
        );
    }
    assert_eq!(
        post("/v1/sessions/x-9", cose, b"a".to_vec())
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        post("/v1/sessions/a%2Fb", cose, b"a".to_vec())
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        post("/v1/sessions", cose, b"nope".to_vec())
            .status()
            .as_u16(),
        400
    );
    assert_eq!(
        post("/v1/sessions", "text/plain", b"hello:x".to_vec())
            .status()
            .as_u16(),
        415
    );
    // 413 from the Content-Length; a client still writing the body may instead see the
    // connection the server closed after answering.
    match http
        .post(format!("{base}/v1/sessions/s-1"))
        .header("content-type", cose)
        .body(vec![7; 1024 * 1024 + 1])
        .send()
    {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
    }
    // Per agent: two sessions a minute, the third is refused; another agent is not.
    assert_eq!(
        post("/v1/sessions", cose, b"hello:agent-1".to_vec())
            .status()
            .as_u16(),
        201
    );
    let r = post("/v1/sessions", cose, b"hello:agent-1".to_vec());
    assert_eq!(r.status().as_u16(), 429);
    let err: serde_json::Value = r.json().unwrap();
    assert_eq!(err["error"], "rate_limited");
    assert_eq!(
        post("/v1/sessions", cose, b"hello:agent-2".to_vec())
            .status()
            .as_u16(),
        201
    );
    // Enrolment attempts per source: three a minute.
    for _ in 0..3 {
        assert_eq!(
            post("/v1/agents/enroll", "application/json", b"{}".to_vec())
                .status()
                .as_u16(),
            400
        );
    }
    assert_eq!(
        post("/v1/agents/enroll", "application/json", b"{}".to_vec())
            .status()
            .as_u16(),
        429
    );
    // The OpenAPI document is served.
    let doc: serde_json::Value = http
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(doc["paths"]["/v1/sessions"]["post"].is_object());
    stop_tx.send(()).unwrap();
    thread.join().unwrap();
}
