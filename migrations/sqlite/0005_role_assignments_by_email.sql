-- Roles assigned by email (see migrations/postgres/0005_role_assignments_by_email.sql).
CREATE TABLE role_email_assignments (
    email      TEXT    NOT NULL,
    role_id    INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    granted_by TEXT    NOT NULL,
    granted_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (email, role_id)
);
CREATE INDEX role_email_assignments_role_idx ON role_email_assignments (role_id);
