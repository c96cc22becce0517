//! docs/openapi.json is the document the server generates (run with
//! `KEYSMITH_UPDATE_OPENAPI=1` to rewrite it after changing an endpoint).

#[test]
fn committed_openapi_document_matches_the_handlers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let generated = format!("{}\n", keysmith_server::openapi::document());
    if std::env::var_os("KEYSMITH_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json drifted from the handlers: rerun this test with KEYSMITH_UPDATE_OPENAPI=1"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/keys",
        "/v1/agents/enroll",
        "/v1/sessions/{session_id}",
        "/v1/bulk",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}
