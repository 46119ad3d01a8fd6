-- Roles assigned to an email address rather than to an account, so an assignment can be made
-- (from a roles file, or `gatehouse roles assign`) before that person first signs in. It
-- applies to a user only while the provider vouches for the address (email_verified), matched
-- as exact ASCII lower case; addresses are stored lower-cased.
CREATE TABLE role_email_assignments (
    email      TEXT        NOT NULL,
    role_id    BIGINT      NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    granted_by TEXT        NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (email, role_id)
);
CREATE INDEX role_email_assignments_role_idx ON role_email_assignments (role_id);
