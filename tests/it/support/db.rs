//! A fresh database per test: a new PostgreSQL database (dropped afterwards, even when the
//! test panics) or a SQLite file in a temporary directory.

use sqlx::{Connection, Executor, PgConnection};

/// Server the tests create their databases on; trust auth on 127.0.0.1 on every machine here.
pub fn pg_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub enum TestDb {
    Postgres {
        name: String,
        url: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    /// A database the test made itself (a private cluster's): nothing to drop.
    At {
        url: String,
    },
}

impl TestDb {
    pub async fn postgres() -> TestDb {
        let name = format!("gatehouse_test_{}", uuid::Uuid::new_v4().simple());
        let admin = pg_admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} is not reachable ({e}); scripts/test starts it")
        });
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).expect("admin url");
        url.set_path(&name);
        TestDb::Postgres {
            name,
            url: url.to_string(),
        }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        TestDb::Sqlite { _dir: dir, url }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Postgres { url, .. } | TestDb::Sqlite { url, .. } | TestDb::At { url } => url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let TestDb::Postgres { name, .. } = self else {
            return;
        };
        let name = name.clone();
        // Drop cannot await, and may run inside a runtime: do it on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&pg_admin_url()).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: test database {} was not dropped", self.url());
        }
    }
}
