-- Gatehouse schema, first version (SQLite). Mirrors migrations/postgres/0001_initial.sql:
-- JSON as TEXT, timestamps as RFC 3339 TEXT in UTC, booleans as INTEGER 0/1.
-- Migrations are append-only: change the schema with a new file.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    email          TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    name           TEXT,
    groups         TEXT    NOT NULL DEFAULT '[]',
    is_admin       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_login_at  TEXT,
    UNIQUE (issuer, subject)
);
CREATE INDEX users_email_idx ON users (lower(email));

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
    data         TEXT NOT NULL DEFAULT '{}',
    client_ip    TEXT,
    user_agent   TEXT,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_seen_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at   TEXT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE roles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    data_sets   TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE user_roles (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    granted_by TEXT,
    granted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE group_role_mappings (
    group_name TEXT    NOT NULL,
    role_id    INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_by TEXT,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (group_name, role_id)
);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    kind        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL DEFAULT 'success',
    actor_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor       TEXT,
    client_ip   TEXT,
    request_id  TEXT,
    details     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, occurred_at);

CREATE TABLE github_identities (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    email           TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    github_username TEXT NOT NULL,
    last_pull_date  TEXT NOT NULL,
    departed_at     TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX github_identities_username_idx ON github_identities (lower(github_username));
CREATE INDEX github_identities_email_idx ON github_identities (email);

CREATE TABLE assets (
    serial      TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    owner_email TEXT NOT NULL,
    assigned_at TEXT,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX assets_owner_idx ON assets (owner_email);

CREATE TABLE distribution_lists (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    list_email TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    hidden     INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE distribution_list_members (
    list_id      INTEGER NOT NULL REFERENCES distribution_lists (id) ON DELETE CASCADE,
    member_email TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('member', 'owner')),
    PRIMARY KEY (list_id, member_email, role)
);
CREATE INDEX distribution_list_members_email_idx ON distribution_list_members (member_email);

CREATE TABLE repos (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    visibility  TEXT    NOT NULL DEFAULT 'private',
    archived    INTEGER NOT NULL DEFAULT 0,
    html_url    TEXT,
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE repo_traffic (
    repo_id       INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day           TEXT    NOT NULL,
    views         INTEGER NOT NULL DEFAULT 0,
    unique_views  INTEGER NOT NULL DEFAULT 0,
    clones        INTEGER NOT NULL DEFAULT 0,
    unique_clones INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day)
);

CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    trigger     TEXT NOT NULL DEFAULT 'schedule',
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    outcome     TEXT NOT NULL DEFAULT 'running',
    counts      TEXT NOT NULL DEFAULT '{}',
    error       TEXT,
    holder      TEXT
);
CREATE INDEX sync_runs_kind_idx ON sync_runs (kind, started_at);
