//! A test-only HTTP CONNECT proxy on loopback: it answers `200` to `CONNECT host:port`,
//! then copies bytes both ways (TLS goes end to end inside the tunnel), and records each
//! CONNECT target so a test can assert that a client went through it. Any other method
//! gets `405`; a target it cannot reach gets `502`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A running CONNECT proxy (its threads live as long as the test process).
#[derive(Debug)]
pub struct ConnectProxy {
    /// `http://127.0.0.1:PORT`: the value for a `proxy` setting or `HTTPS_PROXY`.
    pub url: String,
    /// Every CONNECT target asked for, in order (`host:port`).
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// Starts a proxy on a free loopback port.
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("the proxy's address")
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = log.clone();
                std::thread::spawn(move || tunnel(conn, &log));
            }
        });
        ConnectProxy { url, seen }
    }

    /// The CONNECT targets seen so far.
    pub fn targets(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn tunnel(client: TcpStream, log: &Mutex<Vec<String>>) {
    let Ok(read_half) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Headers up to the blank line.
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => return,
            Ok(_) if h == "\r\n" || h == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = (&client).write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    if let Ok(mut seen) = log.lock() {
        seen.push(target.to_owned());
    }
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    if (&client)
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    // The client waits for the 200 before it sends, so nothing is buffered past the
    // headers.
    assert!(
        reader.buffer().is_empty(),
        "bytes before the tunnel was open"
    );
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || copy(c2, u2));
    copy(upstream, client);
    let _ = up.join();
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
