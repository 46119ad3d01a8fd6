-- Gatehouse schema, first version. Migrations are append-only: change the schema with a new file.

-- People who signed in, keyed by their identity at the provider, never by email.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    issuer        TEXT        NOT NULL,
    subject       TEXT        NOT NULL,
    email         TEXT,
    email_verified BOOLEAN    NOT NULL DEFAULT FALSE,
    name          TEXT,
    groups        JSONB       NOT NULL DEFAULT '[]'::jsonb,
    is_admin      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at TIMESTAMPTZ,
    UNIQUE (issuer, subject)
);
CREATE INDEX users_email_idx ON users (lower(email));

-- Server-side sessions when Redis is not configured. `id_hash` is a hash of the cookie value,
-- so a database dump does not hand out live sessions.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      BIGINT REFERENCES users (id) ON DELETE CASCADE,
    data         JSONB       NOT NULL DEFAULT '{}'::jsonb,
    client_ip    TEXT,
    user_agent   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE roles (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE,
    description TEXT        NOT NULL DEFAULT '',
    -- Data sets the role grants, e.g. {"repos": ["platform-*", "website"]}.
    data_sets   JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE user_roles (
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    BIGINT      NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    granted_by TEXT,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE group_role_mappings (
    group_name TEXT        NOT NULL,
    role_id    BIGINT      NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, role_id)
);

CREATE TABLE audit_events (
    id          BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind        TEXT        NOT NULL,
    outcome     TEXT        NOT NULL DEFAULT 'success',
    actor_id    BIGINT REFERENCES users (id) ON DELETE SET NULL,
    actor       TEXT,
    client_ip   TEXT,
    request_id  TEXT,
    details     JSONB       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, occurred_at);

-- Work email -> GitHub login, from the organization's SAML identities. Emails are stored
-- lower-cased. Departed identities are kept (hidden by default), never deleted by a sync.
CREATE TABLE github_identities (
    id              BIGSERIAL PRIMARY KEY,
    email           TEXT        NOT NULL,
    name            TEXT        NOT NULL DEFAULT '',
    github_username TEXT        NOT NULL,
    last_pull_date  TIMESTAMPTZ NOT NULL,
    departed_at     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX github_identities_username_idx ON github_identities (lower(github_username));
CREATE INDEX github_identities_email_idx ON github_identities (email);

-- Laptops, from the asset-management feed (full snapshots).
CREATE TABLE assets (
    serial      TEXT PRIMARY KEY,
    model       TEXT        NOT NULL,
    owner_email TEXT        NOT NULL,
    assigned_at DATE,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX assets_owner_idx ON assets (owner_email);

CREATE TABLE distribution_lists (
    id         BIGSERIAL PRIMARY KEY,
    list_email TEXT        NOT NULL UNIQUE,
    name       TEXT        NOT NULL,
    hidden     BOOLEAN     NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Members and owners of each list; a person may be both.
CREATE TABLE distribution_list_members (
    list_id      BIGINT NOT NULL REFERENCES distribution_lists (id) ON DELETE CASCADE,
    member_email TEXT   NOT NULL,
    role         TEXT   NOT NULL CHECK (role IN ('member', 'owner')),
    PRIMARY KEY (list_id, member_email, role)
);
CREATE INDEX distribution_list_members_email_idx ON distribution_list_members (member_email);

CREATE TABLE repos (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE,
    description TEXT        NOT NULL DEFAULT '',
    visibility  TEXT        NOT NULL DEFAULT 'private',
    archived    BOOLEAN     NOT NULL DEFAULT FALSE,
    html_url    TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per repository per day; GitHub keeps 14 days, Gatehouse accumulates.
CREATE TABLE repo_traffic (
    repo_id       BIGINT  NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day           DATE    NOT NULL,
    views         INTEGER NOT NULL DEFAULT 0,
    unique_views  INTEGER NOT NULL DEFAULT 0,
    clones        INTEGER NOT NULL DEFAULT 0,
    unique_clones INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day)
);

CREATE TABLE sync_runs (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT        NOT NULL,
    trigger     TEXT        NOT NULL DEFAULT 'schedule',
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    outcome     TEXT        NOT NULL DEFAULT 'running',
    counts      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    error       TEXT,
    holder      TEXT
);
CREATE INDEX sync_runs_kind_idx ON sync_runs (kind, started_at);
