//! Two instances behind a real load balancer (Debian's nginx, round robin, on loopback),
//! sharing PostgreSQL and Redis: a sign-in whose callback one instance answers and whose next
//! page the other does, a rate limit counted across both, and one instance stopped under
//! load with no request failing and no one signed out.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::signin::get_with;
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::FakeIdp;
use crate::support::{TestDb, free_port, redis_url};

const NGINX: &str = "/usr/sbin/nginx";

/// nginx in front of `upstreams`, on `port`, in a folder of its own; stopped on drop.
struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(port: u16, upstreams: &[String]) -> Nginx {
        assert!(
            std::path::Path::new(NGINX).exists(),
            "{NGINX} is missing: scripts/test installs Debian's nginx"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let servers: String = upstreams
            .iter()
            .map(|u| format!("    server {u} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        // What the README's production notes ask of a load balancer: retry a request that
        // could not reach an instance on another one; say which instance answered (for the
        // test); pass the client's address and scheme on.
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               upstream gatehouse {{\n{servers}    keepalive 16;\n  }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                   proxy_pass http://gatehouse;\n      proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                   proxy_set_header X-Forwarded-Proto $scheme;\n\
                   proxy_next_upstream error timeout http_502 http_503;\n\
                   add_header X-Upstream $upstream_addr always;\n    }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, _dir: dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_behind_nginx_share_sign_in_and_limits_and_survive_a_stop() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::postgres().await;
    let redis = redis_url();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let front_port = free_port();
    let front = format!("http://127.0.0.1:{front_port}");
    let (port_a, port_b) = (free_port(), free_port());
    let start = |port: u16| {
        let (idp, db, redis, prefix, front) =
            (&idp, &db, redis.clone(), prefix.clone(), front.clone());
        async move {
            let bind = format!("127.0.0.1:{port}");
            app_with(
                idp,
                db,
                &[
                    ("GATEHOUSE_BIND", bind.as_str()),
                    ("GATEHOUSE_PUBLIC_URL", front.as_str()),
                    ("GATEHOUSE_TRUSTED_PROXIES", "1"),
                    ("GATEHOUSE_REDIS_URL", redis.as_str()),
                    ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
                    ("GATEHOUSE_SHUTDOWN_DRAIN", "1s"),
                    (
                        "GATEHOUSE_RATE_LIMITS",
                        "auth.login=10000/minute,auth.callback=10000/minute,\
                         profile=100000/minute,default=100000/minute,lookup=4/minute",
                    ),
                ],
            )
            .await
        }
    };
    let a = start(port_a).await;
    let b = start(port_b).await;
    let upstreams = [format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}")];
    let _nginx = tokio::task::block_in_place(|| Nginx::start(front_port, &upstreams));

    // Signed in through the front: the test helpers speak to `app.base`, here nginx.
    let mut via_front = a;
    let a_base = std::mem::replace(&mut via_front.base, front.clone());
    assert_eq!(a_base, format!("http://127.0.0.1:{port_a}"));
    let (jar, callback) = signed_in(&via_front, &idp).await;
    let callback_on = callback.headers()["x-upstream"]
        .to_str()
        .expect("ascii")
        .to_string();
    // Round robin: the next pages alternate, so one of them is the other instance's.
    let mut served_by = std::collections::HashSet::new();
    for _ in 0..4 {
        let r = get_with(&jar, &format!("{front}/profile")).await;
        assert_eq!(r.status(), StatusCode::OK);
        served_by.insert(
            r.headers()["x-upstream"]
                .to_str()
                .expect("ascii")
                .to_string(),
        );
    }
    assert_eq!(
        served_by.len(),
        2,
        "both instances served /profile: {served_by:?}"
    );
    assert!(served_by.contains(&callback_on));

    // One rate limit for both: 4 a minute in all, not 4 on each.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = get_with(&jar, &format!("{front}/lookup?email=x%40example.com")).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429], "{statuses:?}");

    // Load on both; one instance stops in the middle of it. No request fails and the user
    // stays signed in: nginx sends what instance b can no longer take to instance a.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (jar, url) = (jar.clone(), format!("{front}/profile"));
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match crate::support::http()
                    .get(&url)
                    .header("cookie", jar.header())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == StatusCode::OK => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        seen.push(r.status().to_string());
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        seen.push(e.to_string());
                    }
                }
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_stop = done.load(Ordering::Relaxed);
    b.stop_for_restart().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut problems = Vec::new();
    for task in load {
        problems.extend(task.await.expect("load task"));
    }
    let (ok, bad) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(
        before_stop > 0 && ok > before_stop,
        "load ran: {before_stop} then {ok}"
    );
    assert_eq!(bad, 0, "{ok} answered, {bad} failed: {problems:?}");
    // Instance a alone serves on, the same session still signed in.
    let r = get_with(&jar, &format!("{front}/profile")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["x-upstream"],
        format!("127.0.0.1:{port_a}").as_str()
    );
    via_front.base = a_base;
    via_front.stop().await;
}
