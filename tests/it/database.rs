//! Reaching the database: every way it can fail ends in about a second, with the cause
//! in the message and exit 6, and a signal while connecting exits 5. The servers here
//! are a real PostgreSQL, a port nobody listens on, a stand-in that speaks PostgreSQL's
//! wire protocol far enough to refuse a login, and one that accepts and never answers.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A port on loopback that nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Accepts connections and never says a word.
async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// Refuses every login the way PostgreSQL does: declines TLS, reads the startup
/// message, answers a FATAL 28P01 ErrorResponse (with the server's source file and
/// line, which must not reach the user) and hangs up.
async fn server_refusing_logins() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(refuse_login(socket));
        }
    });
    port
}

async fn refuse_login(mut socket: TcpStream) -> std::io::Result<()> {
    loop {
        let len = socket.read_i32().await? as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        socket.read_exact(&mut body).await?;
        // SSLRequest: code 80877103. Anything else is the startup message.
        if body.len() == 4 && body[..] == 80877103i32.to_be_bytes() {
            socket.write_all(b"N").await?;
            continue;
        }
        break;
    }
    let mut fields = Vec::new();
    for (kind, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28P01"),
        (b'M', "password authentication failed for user \"app\""),
        (b'F', "auth.c"),
        (b'L', "326"),
        (b'R', "auth_failed"),
    ] {
        fields.push(kind);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(fields.len() as i32 + 4).to_be_bytes());
    message.extend_from_slice(&fields);
    socket.write_all(&message).await?;
    socket.shutdown().await
}

/// Runs `demo-fail` against `url` and returns what it did and how long it took.
async fn run_against(url: &str, extra: &[(&str, &str)]) -> (Ran, Duration) {
    let mut cmd = run_job();
    cmd.arg("demo-fail").env("DATABASE_URL", url);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let ran = output(cmd).await;
    (ran, started.elapsed())
}

fn assert_fast_exit_6(ran: &Ran, took: Duration, cause: &str) {
    assert_eq!(ran.code, Some(6), "{}", ran.stderr);
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}:\n{}",
        ran.stderr
    );
    let message = ran
        .stderr
        .lines()
        .find(|l| l.starts_with("run-job: "))
        .unwrap_or_else(|| panic!("no message for a person:\n{}", ran.stderr));
    assert!(message.contains(cause), "`{message}` lacks `{cause}`");
    assert!(!message.contains("pool timed out"), "{message}");
    assert!(!message.contains(" at line "), "{message}");
}

#[tokio::test]
async fn a_refused_connection_fails_at_once_saying_so() {
    let port = closed_port().await;
    let (ran, took) = run_against(&format!("postgres://app@127.0.0.1:{port}/market"), &[]).await;
    assert_fast_exit_6(&ran, took, "connection refused");
    assert!(ran.stderr.contains(&format!("127.0.0.1:{port}/market")));
}

#[tokio::test]
async fn a_refused_login_fails_at_once_naming_it_without_the_password() {
    let port = server_refusing_logins().await;
    let url = format!("postgres://app:Wr0ng-Secret@127.0.0.1:{port}/market");
    let (ran, took) = run_against(&url, &[]).await;
    assert_fast_exit_6(
        &ran,
        took,
        "the server refused the login: password authentication failed for user \"app\"",
    );
    assert!(!ran.stderr.contains("Wr0ng-Secret"));
}

#[tokio::test]
async fn a_missing_database_fails_at_once_naming_it() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (server, _) = base.rsplit_once('/').unwrap();
    let (ran, took) = run_against(&format!("{server}/run_job_no_such_database"), &[]).await;
    assert_fast_exit_6(
        &ran,
        took,
        "database \"run_job_no_such_database\" does not exist (check the database name)",
    );
}

#[tokio::test]
async fn a_host_that_never_answers_fails_after_the_connect_timeout() {
    let port = silent_server().await;
    let (ran, took) = run_against(
        &format!("postgres://app@127.0.0.1:{port}/market"),
        &[("DATABASE_CONNECT_TIMEOUT_SECONDS", "1")],
    )
    .await;
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert_fast_exit_6(&ran, took, "no answer within 1 s");
}

#[tokio::test]
async fn sigterm_while_connecting_exits_as_interrupted() {
    let port = silent_server().await;
    for args in [&["demo-fail"][..], &["migrate"], &["check", "--connect"]] {
        let mut cmd = run_job();
        cmd.args(args)
            .env(
                "DATABASE_URL",
                format!("postgres://app@127.0.0.1:{port}/market"),
            )
            .env("DATABASE_CONNECT_TIMEOUT_SECONDS", "60")
            .env("DLOCAL_BASE_URL", "http://127.0.0.1:9")
            .env("DLOCAL_API_KEY", "k")
            .env("DLOCAL_SECRET_KEY", "s")
            .env("FEU_AUTH_URL", "http://127.0.0.1:9/auth/token")
            .env("FEU_API_BASE_URL", "http://127.0.0.1:9")
            .env("FEU_REFRESH_TOKEN", "r")
            .env("FEU_EMISOR_RUT", "219999830019")
            .env("RESEND_API_KEY", "re_test");
        let child = cmd.spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let signalled = Instant::now();
        send_signal(child.id().unwrap(), "TERM");
        let ran = finished(child, Duration::from_secs(10)).await;
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "{args:?}: {:?}",
            signalled.elapsed()
        );
        assert_eq!(ran.code, Some(5), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr
                .contains("interrupted by a signal while connecting"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}
