-- Break-glass administrators, granted by email from the command line for when the identity
-- provider sends no groups. Only a verified email matches.
CREATE TABLE admin_grants (
    email      TEXT PRIMARY KEY,
    granted_by TEXT        NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX users_last_login_idx ON users (last_login_at);
