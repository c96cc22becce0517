//! The holder's sign-in against the Entra emulator as a real HTTP server: the test is the
//! browser (it follows the authorize 302 to the agent's loopback redirect).

use std::time::{Duration, SystemTime};

use entra_graph::emulator::{Emulator, EmulatorConfig};
use entra_graph::oidc::{check_holder, HolderRequirements, OidcSettings, OidcVerifier};
use keysmith_agent::oidc::{sign_in, SignInRequest};
use keysmith_agent::AgentError;

const KIM: &str = "kim@contoso.onmicrosoft.com";

fn http() -> reqwest::blocking::Client {
    keysmith_agent::http::client(None, Duration::from_secs(5)).unwrap()
}

fn request(emu: &Emulator, nonce: &str, hint: &str) -> SignInRequest {
    SignInRequest {
        issuer: emu.oidc_issuer(),
        client_id: emu.client_id().to_owned(),
        scopes: vec!["openid".into(), "profile".into()],
        nonce: nonce.to_owned(),
        login_hint: Some(hint.to_owned()),
        max_age: Some(600),
        session_code: Some("K7QF-2MXD".into()),
        timeout: Duration::from_secs(20),
    }
}

/// A browser: GET the authorize URL, then follow its Location (to the loopback) after
/// first poking the loopback with a forged `state`, which must be ignored. Returns the
/// page the loopback answered.
fn browser(url: String, forge_first: bool) -> std::thread::JoinHandle<(u16, String)> {
    std::thread::spawn(move || {
        let c = http();
        let r = c.get(&url).send().unwrap();
        assert_eq!(r.status().as_u16(), 302, "{url}");
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            loc.starts_with("http://127.0.0.1:") || loc.starts_with("http://[::1]:"),
            "{loc}"
        );
        if forge_first {
            let base = loc.split('?').next().unwrap();
            let forged = c
                .get(format!("{base}?code=evil&state=forged"))
                .send()
                .unwrap();
            assert_eq!(forged.status().as_u16(), 400);
            let other = c
                .get(loc.replace("/callback", "/favicon.ico"))
                .send()
                .unwrap();
            assert_eq!(other.status().as_u16(), 404);
        }
        let page = c.get(&loc).send().unwrap();
        (page.status().as_u16(), page.text().unwrap())
    })
}

#[test]
fn a_holder_signs_in_with_pkce_and_gets_a_token_bound_to_the_session_nonce() {
    let emu = Emulator::start(EmulatorConfig::default()).unwrap();
    let mut opened = None;
    let req = request(&emu, "b64-session-nonce", KIM);
    let token = sign_in(&http(), &req, &mut |url| {
        assert!(url.contains("code_challenge_method=S256"));
        assert!(url.contains("max_age=600"));
        assert!(url.contains("login_hint=kim%40contoso"));
        assert!(url.contains("nonce=b64%2Dsession%2Dnonce"));
        assert!(!url.contains("code_verifier"));
        opened = Some(browser(url.to_owned(), true));
        Ok(())
    })
    .unwrap();
    let (status, page) = opened.unwrap().join().unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("K7QF-2MXD"),
        "the page repeats the session code: {page}"
    );
    assert!(!format!("{token:?}").contains(token.expose()));
    // What the server will do with it (review G1).
    let mut s = OidcSettings::new(emu.oidc_issuer(), emu.client_id());
    s.jwks_url = Some(emu.jwks_url());
    s.tenant_id = Some(emu.tenant_id().to_owned());
    let t = OidcVerifier::new(s)
        .unwrap()
        .verify(token.expose(), SystemTime::now())
        .unwrap();
    check_holder(
        &t,
        &HolderRequirements::new("b64-session-nonce"),
        SystemTime::now(),
    )
    .unwrap();
    assert!(t.amr.contains(&"mfa".to_owned()));
}

#[test]
fn idp_errors_and_silence_end_the_sign_in() {
    let emu = Emulator::start(EmulatorConfig::default()).unwrap();
    let mut handle = None;
    let r = sign_in(
        &http(),
        &request(&emu, "n", "nobody@contoso.onmicrosoft.com"),
        &mut |url| {
            handle = Some(browser(url.to_owned(), false));
            Ok(())
        },
    );
    assert!(
        matches!(r, Err(AgentError::SignIn(ref m)) if m.contains("invalid_request")),
        "{r:?}"
    );
    handle.unwrap().join().unwrap();
    let mut quiet = request(&emu, "n", KIM);
    quiet.timeout = Duration::from_secs(1);
    assert!(matches!(
        sign_in(&http(), &quiet, &mut |_| Ok(())),
        Err(AgentError::SignInTimeout(1))
    ));
    // The configured issuer must be the document's.
    let mut wrong = request(&emu, "n", KIM);
    wrong.issuer = format!("{}/", emu.oidc_issuer());
    assert!(matches!(
        sign_in(&http(), &wrong, &mut |_| Ok(())),
        Err(AgentError::Refused { .. })
    ));
    assert!(matches!(
        sign_in(&http(), &request(&emu, "", KIM), &mut |_| Ok(())),
        Err(AgentError::SignIn(_))
    ));
}

/// The holder's flow as the service runs it: the agent sends the session code and the
/// authorize URL to the UI over the socket; the UI (the test) opens it; the agent's
/// loopback gets the code; then the UI answers the PIN prompt.
#[cfg(unix)]
#[test]
fn the_sign_in_url_goes_through_the_ui_channel() {
    use keysmith_agent::ui::unix::{connect, UiListener};
    use keysmith_agent::ui::{session_code, FromUi, HolderPin, ToUi};
    use std::os::unix::fs::PermissionsExt;

    let emu = Emulator::start(EmulatorConfig::default()).unwrap();
    let d = std::env::temp_dir().join(format!("ks-ui-oidc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = d.join("ui.sock");
    let me = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let listener = UiListener::bind(&path, &[me], "fp").unwrap();
    let p2 = path.clone();
    let ui = std::thread::spawn(move || {
        let mut c = connect(&p2, &[me]).unwrap();
        let mut code_shown = None;
        let mut page = None;
        while let Some(m) = c.recv().unwrap() {
            match m {
                ToUi::SessionCode { code } => code_shown = Some(code),
                ToUi::NeedSignIn { url } => page = Some(browser(url, false).join().unwrap()),
                ToUi::NeedPin { .. } => c
                    .send(&FromUi::Pin {
                        pin: HolderPin::new("2468-1357".to_owned().into()),
                    })
                    .unwrap(),
                ToUi::Done { .. } => break,
                _ => {}
            }
        }
        (code_shown.unwrap(), page.unwrap())
    });
    let mut s = listener.accept().unwrap();
    let code = session_code();
    s.send(&ToUi::SessionCode { code: code.clone() }).unwrap();
    let mut req = request(&emu, "nonce-via-ui", KIM);
    req.session_code = Some(code.clone());
    let token = sign_in(&http(), &req, &mut |url| {
        s.send(&ToUi::NeedSignIn {
            url: url.to_owned(),
        })
    })
    .unwrap();
    assert!(!token.expose().is_empty());
    let pin = s.ask_pin(8, true).unwrap();
    assert_eq!(pin.expose(), "2468-1357");
    s.send(&ToUi::Done {
        ok: true,
        message: "done".into(),
    })
    .unwrap();
    let (shown, (status, page)) = ui.join().unwrap();
    assert_eq!(shown, code);
    assert_eq!(status, 200);
    assert!(page.contains(&code), "{page}");
    drop(listener);
    std::fs::remove_dir_all(&d).unwrap();
}
