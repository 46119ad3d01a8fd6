-- Break-glass administrators (see migrations/postgres/0002_admin_grants.sql).
CREATE TABLE admin_grants (
    email      TEXT PRIMARY KEY,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX users_last_login_idx ON users (last_login_at);
