//! Servers of the tests' own, which a test may stop and start again without disturbing the
//! others: a PostgreSQL cluster in a temporary folder on a free port, and a Redis server.
//! (The shared ones on the default ports serve every other test at once.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Debian keeps each PostgreSQL version's programs in `/usr/lib/postgresql/N/bin`: the newest.
fn pg_bin(program: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's programs in /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .last()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(program)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `initdb` and `pg_ctl` refuse to run as root: as root they run as the `postgres` user.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn wait_for_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() != up {
        assert!(
            Instant::now() < deadline,
            "port {port} did not go {}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL cluster of one test's own: trust authentication on 127.0.0.1.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        PrivatePostgres::start_with(None)
    }

    /// A cluster that takes only TLS connections with a client certificate from `ca`'s
    /// signing (`cert clientcert=verify-full`: the certificate's CN is the user), serving
    /// `ca`'s server certificate.
    pub fn start_tls(ca: &TestCa) -> PrivatePostgres {
        PrivatePostgres::start_with(Some(ca))
    }

    fn start_with(tls: Option<&TestCa>) -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("tempdir");
        if running_as_root() {
            let owned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(owned.success(), "the cluster's folder given to postgres");
        }
        let data = dir.path().join("data");
        let out = as_postgres(&pg_bin("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(ca) = tls {
            for (from, to) in [
                ("server.crt", "server.crt"),
                ("server.key", "server.key"),
                ("ca.crt", "root.crt"),
            ] {
                std::fs::copy(ca.path(from), data.join(to)).expect("copies the certificates");
            }
            let conf = "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                        ssl_ca_file = 'root.crt'\n";
            append(&data.join("postgresql.conf"), conf);
            // TLS with a verified client certificate, or nothing (no plain `host` line).
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 cert clientcert=verify-full\n",
            )
            .expect("pg_hba.conf");
            if running_as_root() {
                let owned = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .status()
                    .expect("chown");
                assert!(owned.success());
            }
            // PostgreSQL refuses a key file others can read.
            let key = data.join("server.key");
            let mut perms = std::fs::metadata(&key).expect("key").permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
            std::fs::set_permissions(&key, perms).expect("chmod");
        }
        let pg = PrivatePostgres {
            dir,
            port: free_port(),
        };
        pg.start_again();
        pg
    }

    /// The URL for `host` (the server certificate names `localhost` only).
    pub fn url_at(&self, host: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres", self.port)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster (again), on the same port, and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.pg_ctl(&["-w", "-o", &options, "-l", &log.to_string_lossy(), "start"]);
        wait_for_port(self.port, true);
    }

    /// Stops it at once (open connections are cut, as in a crash or a failover).
    pub fn stop(&self) {
        self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
        wait_for_port(self.port, false);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A Redis server of one test's own; with `persist`, it writes every change to its
/// append-only file and reads it back when started again.
pub struct PrivateRedis {
    dir: tempfile::TempDir,
    pub port: u16,
    persist: bool,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start(persist: bool) -> PrivateRedis {
        let mut redis = PrivateRedis {
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            persist,
            child: None,
        };
        redis.start_again();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start_again(&mut self) {
        let appendonly = if self.persist { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_for_port(self.port, true);
    }

    /// Kills it (no shutdown save: what was not already on disk is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_for_port(self.port, false);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("opens");
    file.write_all(text.as_bytes()).expect("appends");
}

/// A throwaway certificate authority made with `openssl`, and what it signed: a server
/// certificate for `localhost` and a client certificate for the user `postgres`.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let ca = TestCa {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        ca.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=Gatehouse test CA",
        ]);
        ca.sign(
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        );
        ca.sign(
            "client",
            "/CN=postgres",
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        );
        ca
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `file:` secret reference to one of its files.
    pub fn file_ref(&self, name: &str) -> String {
        format!("file:{}", self.path(name).display())
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn sign(&self, name: &str, subject: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(self.path(&ext), extensions).expect("extensions");
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        self.openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ]);
    }
}
